"""Training layer: labelled, time-split training sets built from the feature partitions."""

import dagster as dg

from assets.features import transaction_features
from assets.raw import raw_labels
from fraud_platform.batch.metadata import lake_size, partition_dates, timed
from fraud_platform.models.training import (
    FEATURES,
    TRAINING_SETS_PATH,
    TrainingWindow,
    build_training_set,
)
from fraud_platform.partitions import daily
from fraud_platform.quality import loaders
from fraud_platform.quality.checks import suite_checks
from fraud_platform.resources import LakeResource, SparkResource

WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-TrainingWindow().window_days + 1,
    end_offset=0,
    allow_nonexistent_upstream_partitions=True,
)


class TrainingSetConfig(dg.Config):
    window_days: int = 90
    delay_days: int = 7
    test_days: int = 7

    def window(self) -> TrainingWindow:
        return TrainingWindow(self.window_days, self.delay_days, self.test_days)


@dg.asset(
    key_prefix="training",
    name="training_set",
    group_name="training",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        dg.AssetDep(transaction_features, partition_mapping=WINDOW),
        dg.AssetDep(raw_labels, partition_mapping=WINDOW),
    ],
    kinds={"spark", "parquet"},
    pool="spark",
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    spark: SparkResource,
    lake: LakeResource,
) -> dg.MaterializeResult:
    """As of each day: transactions `delay_days` to `window_days` old, labelled fraud when a
    fraud label had completed by that day, split by time (the last `test_days` are the test
    set). Fraud is weighted in training, not resampled, so the test set keeps the real rate."""
    metadata: dict = {}
    stats = {}
    with timed(metadata):
        for day in partition_dates(context):
            frame = build_training_set(spark.session(), lake, day, config.window())
            if frame is None:
                raise dg.Failure(f"no transaction features in the window before {day}")
            frame = frame.cache()
            counts = {
                (r["split"], r["label"]): r["count"]
                for r in frame.groupBy("split", "label").count().collect()
            }
            frame.write.mode("overwrite").partitionBy("split").parquet(
                lake.uri(TRAINING_SETS_PATH, f"date={day}")
            )
            frame.unpersist()
            train_dates, test_dates = config.window().dates(day)
            stats = {
                "as_of": day,
                "train_rows": counts.get(("train", 0), 0) + counts.get(("train", 1), 0),
                "train_frauds": counts.get(("train", 1), 0),
                "test_rows": counts.get(("test", 0), 0) + counts.get(("test", 1), 0),
                "test_frauds": counts.get(("test", 1), 0),
                "train_dates": f"{train_dates[0]}..{train_dates[-1]}",
                "test_dates": f"{test_dates[0]}..{test_dates[-1]}",
            }
    files, size = lake_size(lake, TRAINING_SETS_PATH, [stats["as_of"]])
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **stats,
            "files": files,
            "bytes": size,
            "path": lake.uri(TRAINING_SETS_PATH),
        }
    )


training_checks = suite_checks(
    "training/training_set", loaders.training_set, set(), catalog_features=FEATURES
)

defs = dg.Definitions(assets=[training_set], asset_checks=training_checks)
