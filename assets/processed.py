"""Processed layer: typed, deduplicated transactions joined with users and merchants."""

import dagster as dg

from assets.raw import raw_transactions
from fraud_platform.batch.metadata import lake_head, lake_size, partition_dates, preview, timed
from fraud_platform.batch.processing import process_transactions, write_partitions
from fraud_platform.lake import PROCESSED_TRANSACTIONS_PATH, row_count
from fraud_platform.partitions import daily
from fraud_platform.quality import loaders
from fraud_platform.quality.checks import suite_checks
from fraud_platform.resources import LakeResource, SparkResource


@dg.asset(
    key_prefix="processed",
    name="transactions",
    group_name="processed",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[raw_transactions],
    kinds={"spark", "parquet"},
    pool="spark",
)
def processed_transactions(
    context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource
) -> dg.MaterializeResult:
    """Each day's raw transactions deduplicated by transaction_id (the earliest wins), typed,
    with the user's home and account and the merchant's category, country and risk tier."""
    dates = partition_dates(context)
    metadata: dict = {"dates": ", ".join(dates)}
    with timed(metadata):
        frame, raw_rows = process_transactions(spark.session(), lake, dates)
        if frame is None:
            raise dg.Failure(f"no raw transactions for {dates[0]}..{dates[-1]} in the lake")
        write_partitions(frame, lake, PROCESSED_TRANSACTIONS_PATH)  # the one Spark job
        rows = row_count(lake, PROCESSED_TRANSACTIONS_PATH, dates)
        head = lake_head(lake, PROCESSED_TRANSACTIONS_PATH, dates)
    files, size = lake_size(lake, PROCESSED_TRANSACTIONS_PATH, dates)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "rows": rows,
            "duplicates_dropped": raw_rows - rows,
            "files": files,
            "bytes": size,
            "path": lake.uri(PROCESSED_TRANSACTIONS_PATH),
            "preview": preview(head),
        }
    )


processed_checks = suite_checks("processed/transactions", loaders.processed_transactions, set())

defs = dg.Definitions(assets=[processed_transactions], asset_checks=processed_checks)
