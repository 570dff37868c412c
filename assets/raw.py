"""Raw layer: the lake partitions the archiver, the simulator or the importer wrote.

Materializing a raw partition records what the lake holds for that day (rows, files, bytes,
a preview) so downstream assets, sensors and checks can react to it; the data itself is
written by the ingestion services, never by Dagster.
"""

import dagster as dg

from assets.keys import topic_asset_key
from fraud_platform.batch.metadata import lake_size, partition_dates, preview
from fraud_platform.ingestion.rules import Rules
from fraud_platform.lake import (
    LABELS,
    PREDICTIONS,
    RAW_TRANSACTIONS,
    LakeTable,
    dataset,
    existing_dates,
)
from fraud_platform.partitions import daily
from fraud_platform.quality import loaders
from fraud_platform.quality.checks import suite_checks
from fraud_platform.resources import LakeResource


def _describe(lake: LakeResource, table: LakeTable, dates: list[str]) -> dict:
    files, size = lake_size(lake, table.path, dates)
    rows_by_date, head = {}, []
    present = set(existing_dates(lake, table.path, dates))
    for day in dates:
        if day not in present:
            rows_by_date[day] = 0
            continue
        day_data = dataset(lake, f"{table.path}/date={day}")
        rows_by_date[day] = day_data.count_rows()
        head = head or day_data.head(5).to_pylist()
    return {
        "path": lake.uri(table.path),
        "files": files,
        "bytes": size,
        "rows": sum(rows_by_date.values()),
        "rows_by_date": dg.MetadataValue.json(rows_by_date),
        "preview": preview(head),
    }


def _raw_asset(name: str, table: LakeTable, topic: str, required: bool, description: str):
    @dg.asset(
        name=name,
        key_prefix="raw",
        group_name="raw",
        partitions_def=daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[topic_asset_key(topic)],
        kinds={"parquet"},
        description=description,
    )
    def _asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        metadata = _describe(lake, table, partition_dates(context))
        empty = [d for d, n in metadata["rows_by_date"].data.items() if n == 0]
        if required and empty:
            raise dg.Failure(
                f"no raw data for {', '.join(empty)} under {metadata['path']}: run the "
                "archiver, `fraud-platform simulate history` or `fraud-platform import` first"
            )
        return dg.MaterializeResult(metadata=metadata)

    return _asset


raw_transactions = _raw_asset(
    "transactions",
    RAW_TRANSACTIONS,
    "transactions-raw",
    True,
    "Validated transactions of the day, hourly Parquet files in raw/transactions/.",
)
raw_labels = _raw_asset(
    "labels",
    LABELS,
    "fraud-labels",
    False,
    "Investigation outcomes completed that day (labels/fraud_investigations/).",
)
raw_predictions = _raw_asset(
    "predictions",
    PREDICTIONS,
    "model-predictions",
    False,
    "The scorer's predictions of the day (raw/predictions/).",
)


raw_checks = suite_checks(
    "raw/transactions",
    loaders.raw_transactions,
    set(),
    currencies=sorted(Rules.from_env().currencies),
)

defs = dg.Definitions(
    assets=[raw_transactions, raw_labels, raw_predictions], asset_checks=raw_checks
)
