"""Training layer: labelled training sets laid out by the evaluation protocol (training,
delay and test periods; fraud_platform.models.protocol) from the feature partitions."""

import dagster as dg

from assets.features import transaction_features
from assets.raw import raw_labels
from fraud_platform.batch.metadata import lake_size, partition_dates, timed
from fraud_platform.models.protocol import TrainingWindow
from fraud_platform.models.training import FEATURES, TRAINING_SETS_PATH, build_training_set
from fraud_platform.partitions import daily
from fraud_platform.quality import loaders
from fraud_platform.quality.checks import suite_checks
from fraud_platform.resources import FeaturesResource, LakeResource, SparkResource

WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-TrainingWindow().window_days + 1,
    end_offset=0,
    allow_nonexistent_upstream_partitions=True,
)


class TrainingSetConfig(dg.Config):
    """The periods of the protocol, in days. The delay defaults to the features' label
    delay (FRAUD_LABEL_DELAY_DAYS): labels take that long, so that is the gap a model in
    service has behind it."""

    train_days: int = TrainingWindow.train_days
    delay_days: int | None = None
    test_days: int = TrainingWindow.test_days
    remove_known_compromised: bool = True

    def window(self, features: FeaturesResource) -> TrainingWindow:
        delay = features.label_delay_days if self.delay_days is None else self.delay_days
        return TrainingWindow(self.train_days, delay, self.test_days)


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
    features: FeaturesResource,
) -> dg.MaterializeResult:
    """As of each day: the training period labelled with the frauds known when the test
    period starts, the delay period left out, the test period labelled with the frauds known
    by the day, and each test day without the cards already known to be compromised. Fraud is
    not resampled, so the test set keeps the real rate."""
    window = config.window(features)
    metadata: dict = {}
    stats = {}
    with timed(metadata):
        for day in partition_dates(context):
            frame, removed = build_training_set(
                spark.session(), lake, day, window, config.remove_known_compromised
            )
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
            periods = window.periods(day)
            stats = {
                "as_of": day,
                "train_rows": counts.get(("train", 0), 0) + counts.get(("train", 1), 0),
                "train_frauds": counts.get(("train", 1), 0),
                "test_rows": counts.get(("test", 0), 0) + counts.get(("test", 1), 0),
                "test_frauds": counts.get(("test", 1), 0),
                "known_compromised_removed": removed,
                "train_dates": f"{periods.train[0]}..{periods.train[-1]}",
                "delay_dates": f"{periods.delay[0]}..{periods.delay[-1]}"
                if periods.delay
                else "none",
                "test_dates": f"{periods.test[0]}..{periods.test[-1]}",
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
