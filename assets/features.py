"""Features layer: every catalog feature of every transaction, point in time."""

import dagster as dg

from assets.processed import processed_transactions
from assets.raw import raw_labels
from fraud_platform.batch.aggregates import profiles, push_profiles
from fraud_platform.batch.metadata import lake_head, lake_size, partition_dates, preview, timed
from fraud_platform.batch.processing import feature_rows, write_partitions
from fraud_platform.features.catalog import CATALOG, history_days
from fraud_platform.lake import (
    MERCHANT_PROFILES_PATH,
    TRANSACTION_FEATURES_PATH,
    USER_PROFILES_PATH,
    dataset,
    row_count,
)
from fraud_platform.partitions import daily
from fraud_platform.quality import loaders
from fraud_platform.quality.checks import suite_checks
from fraud_platform.resources import (
    FeaturesResource,
    LakeResource,
    RedisResource,
    SparkResource,
)

PROFILE_PATHS = {"user": USER_PROFILES_PATH, "merchant": MERCHANT_PROFILES_PATH}
HISTORY = dg.TimeWindowPartitionMapping(
    start_offset=-history_days(), end_offset=0, allow_nonexistent_upstream_partitions=True
)
# Both feature assets read the processed history of the longest window and its labels.
HISTORY_DEPS = [
    dg.AssetDep(processed_transactions, partition_mapping=HISTORY),
    dg.AssetDep(raw_labels, partition_mapping=HISTORY),
]


@dg.asset(
    key_prefix="features",
    name="transaction_features",
    group_name="features",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=HISTORY_DEPS,
    kinds={"spark", "parquet"},
    pool="spark",
)
def transaction_features(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lake: LakeResource,
    features: FeaturesResource,
) -> dg.MaterializeResult:
    """The catalog's features for each transaction of the day, from the processed history
    before it (90 days) and the labels known before each transaction; label-based windows end
    the label delay before it."""
    dates = partition_dates(context)
    delay = features.label_delay_days
    metadata: dict = {
        "dates": ", ".join(dates),
        "features": len(CATALOG),
        "label_delay_days": delay,
    }
    with timed(metadata):
        frame = feature_rows(spark.session(), lake, dates, delay)
        if frame is None:
            raise dg.Failure(
                f"no processed transactions before {dates[-1]}: materialize them first"
            )
        write_partitions(frame, lake, TRANSACTION_FEATURES_PATH)  # the one Spark job
        rows = row_count(lake, TRANSACTION_FEATURES_PATH, dates)
        head = lake_head(lake, TRANSACTION_FEATURES_PATH, dates, [f.name for f in CATALOG[:8]])
    files, size = lake_size(lake, TRANSACTION_FEATURES_PATH, dates)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "rows": rows,
            "files": files,
            "bytes": size,
            "path": lake.uri(TRANSACTION_FEATURES_PATH),
            "preview": preview(head),
        }
    )


@dg.asset(
    key_prefix="features",
    name="entity_profiles",
    group_name="features",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=HISTORY_DEPS,
    kinds={"spark", "parquet", "redis"},
    pool="spark",
)
def entity_profiles(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    lake: LakeResource,
    redis: RedisResource,
) -> dg.MaterializeResult:
    """User baselines (30/90-day amounts, counts, merchants, countries) and merchant risk
    (volume, customers, known fraud rate) as of each day's end. The run's latest day is also
    pushed to Redis as `user:{id}:profile` and `merchant:{id}` hashes (pipelined)."""
    dates = partition_dates(context)
    metadata: dict = {"dates": ", ".join(dates)}
    counts = {}
    with timed(metadata):
        for day in dates:
            built = profiles(spark.session(), lake, day)
            if built is None:
                raise dg.Failure(f"no processed transactions up to {day}: materialize them first")
            for (entity, path), frame in zip(PROFILE_PATHS.items(), built, strict=True):
                frame.write.mode("overwrite").parquet(lake.uri(path, f"date={day}"))
                written = dataset(lake, f"{path}/date={day}").to_table()  # small: one per entity
                counts[entity] = written.num_rows
                if day == dates[-1]:
                    push_profiles(written.to_pylist(), entity, redis.url)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "users": counts["user"],
            "merchants": counts["merchant"],
            "redis_as_of": dates[-1],
            "path": lake.uri("processed/aggregates"),
        }
    )


drift_checks = suite_checks("features/transaction_features", loaders.feature_drift, set())

defs = dg.Definitions(assets=[transaction_features, entity_profiles], asset_checks=drift_checks)
