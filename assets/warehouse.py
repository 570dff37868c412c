"""Warehouse layer: the star schema, loaded from the lake incrementally (MERGE by key).

Each daily partition merges its day's facts; reloading a day changes nothing. Labels reach
`transactions_fact` two ways: a day's load applies the verdicts already known for its
transactions, and each day's load applies the verdicts completed that day to whichever
transactions they judge. The metrics of a day are recomputed for the 30 days before it too,
the time labels take to mature.

Between nightly runs, the `warehouse_hourly` job loads today's partial day from the raw layer
the archiver fills; the nightly run then reloads that day from the processed layer, by the
same keys.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa

from assets.processed import processed_transactions
from assets.raw import raw_labels, raw_predictions
from fraud_platform.batch.metadata import partition_dates, preview, timed
from fraud_platform.lake import PROCESSED_TRANSACTIONS_PATH, RAW_TRANSACTIONS
from fraud_platform.partitions import daily
from fraud_platform.resources import LakeResource, WarehouseResource
from fraud_platform.warehouse import sources
from fraud_platform.warehouse.access import publish_aggregates
from fraud_platform.warehouse.calendar import date_id, date_rows
from fraud_platform.warehouse.loading import upsert
from fraud_platform.warehouse.metrics import daily_metrics, refresh_daily_metrics
from fraud_platform.warehouse.schema import (
    DATE_DIMENSION,
    MERCHANTS_DIMENSION,
    MODEL_PREDICTIONS_FACT,
    TRANSACTIONS_FACT,
    USERS_DIMENSION,
    Table,
    create_tables,
)

LABEL_MATURITY_DAYS = 30
DAILY = {
    "key_prefix": "warehouse",
    "group_name": "warehouse",
    "partitions_def": daily,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "kinds": {"duckdb", "snowflake"},
}


def _count(connection, table: Table) -> int:
    cursor = connection.cursor()
    cursor.execute(f"SELECT COUNT(*) FROM {table.name}")
    return int(cursor.fetchone()[0])


def load_rows(warehouse: WarehouseResource, table: Table, rows: pa.Table | None,
              **options) -> dict:  # fmt: skip
    """Merge `rows` into `table` (created if missing); the run's metadata."""
    metadata: dict = {"backend": warehouse.backend}
    with timed(metadata), warehouse.connect() as connection:
        create_tables(connection)
        loaded = 0 if rows is None else upsert(connection, warehouse.backend, table, rows,
                                               **options)  # fmt: skip
        metadata.update(rows_merged=loaded, table_rows=_count(connection, table))
    if rows is not None and rows.num_rows:
        metadata["preview"] = preview(rows.slice(0, 5).to_pylist())
    return metadata


@dg.asset(key_prefix="warehouse", group_name="warehouse", kinds={"duckdb", "snowflake"})
def users_dimension(lake: LakeResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The card holders (account type, KYC status, registration, home) from the lake."""
    return dg.MaterializeResult(
        metadata=load_rows(warehouse, USERS_DIMENSION, sources.user_rows(lake))
    )


@dg.asset(key_prefix="warehouse", group_name="warehouse", kinds={"duckdb", "snowflake"})
def merchants_dimension(lake: LakeResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The merchants (name, category, location, risk tier) from the lake."""
    rows = sources.merchant_rows(lake)
    return dg.MaterializeResult(metadata=load_rows(warehouse, MERCHANTS_DIMENSION, rows))


@dg.asset(**DAILY)
def date_dimension(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The partition's days: calendar fields, weekend, and the configured country's holidays."""
    dates = partition_dates(context)
    rows = date_rows(date.fromisoformat(dates[0]), date.fromisoformat(dates[-1]),
                     warehouse.holiday_country)  # fmt: skip
    return dg.MaterializeResult(metadata=load_rows(warehouse, DATE_DIMENSION, rows))


@dg.asset(**DAILY, deps=[processed_transactions, raw_labels])
def transactions_fact(
    context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The day's processed transactions, with every matured label known for them, plus the
    labels completed that day on older transactions."""
    dates = partition_dates(context)
    metadata = load_transactions(lake, warehouse, dates, PROCESSED_TRANSACTIONS_PATH)
    if metadata is None:
        raise dg.Failure(f"no processed transactions for {dates[0]}..{dates[-1]} in the lake")
    return dg.MaterializeResult(metadata={"dates": ", ".join(dates), **metadata})


@dg.asset(**DAILY, deps=[raw_predictions])
def model_predictions_fact(
    context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The day's online predictions (probability, decision, model version, latency)."""
    dates = partition_dates(context)
    rows = sources.prediction_rows(lake, dates)
    metadata = load_rows(warehouse, MODEL_PREDICTIONS_FACT, rows)
    return dg.MaterializeResult(metadata={"dates": ", ".join(dates), **metadata})


@dg.asset(**DAILY, deps=[transactions_fact, model_predictions_fact, date_dimension])
def daily_business_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Per day: volume, the model's review and decline rates, fraud caught and the precision
    of what it flagged; recomputed back to the days whose labels may still be maturing."""
    dates = partition_dates(context)
    first = date.fromisoformat(dates[0]) - timedelta(days=LABEL_MATURITY_DAYS)
    return dg.MaterializeResult(
        metadata=refresh_metrics(warehouse, first, date.fromisoformat(dates[-1]))
    )


def load_transactions(lake: LakeResource, warehouse: WarehouseResource, dates: list[str],
                      path: str) -> dict | None:  # fmt: skip
    """Merge the transactions of `dates` from the lake folder `path`, then every verdict
    known for them and every verdict completed on those dates; None if there are none."""
    rows = sources.transaction_rows(lake, dates, path)
    if rows is None:
        return None
    metadata = load_rows(warehouse, TRANSACTIONS_FACT, rows, update=sources.TRANSACTION_ATTRIBUTES)
    labels = sources.label_rows(lake, dates, dates)
    with warehouse.connect() as connection:
        metadata["labels_applied"] = upsert(connection, warehouse.backend, TRANSACTIONS_FACT,
                                            labels, update=sources.LABEL_COLUMNS,
                                            insert=False)  # fmt: skip
    return metadata


def refresh_metrics(warehouse: WarehouseResource, first: date, last: date) -> dict:
    """Recompute the daily metrics of `first`..`last` and publish the aggregates to the
    analysts' database; the run's metadata."""
    first_id, last_id = date_id(first), date_id(last)
    with warehouse.connect() as connection:
        create_tables(connection)
        refresh_daily_metrics(connection, first_id, last_id)
        metrics = daily_metrics(connection, first_id, last_id)
        published = (
            publish_aggregates(connection, warehouse.analyst_duckdb_path)
            if warehouse.backend == "duckdb"
            else []  # on Snowflake, the analyst's role is granted these tables instead
        )
    return {
        "days_recomputed": len(metrics),
        "metrics": preview(metrics[-7:]),
        "published_to_analysts": dg.MetadataValue.json(published),
    }


class HourlyConfig(dg.Config):
    day: str = ""  # yyyy-mm-dd; today (UTC) when empty


@dg.op(description="Today so far, from the raw lake the archiver fills: transactions, "
       "predictions, labels completed today, today's metrics.")  # fmt: skip
def refresh_today(
    config: HourlyConfig, lake: LakeResource, warehouse: WarehouseResource
) -> dg.Output[int]:
    today = date.fromisoformat(config.day) if config.day else datetime.now(UTC).date()
    dates = [today.isoformat()]
    transactions = load_transactions(lake, warehouse, dates, RAW_TRANSACTIONS.path) or {}
    predictions = load_rows(warehouse, MODEL_PREDICTIONS_FACT, sources.prediction_rows(lake, dates))
    load_rows(warehouse, DATE_DIMENSION, date_rows(today, today, warehouse.holiday_country))
    metrics = refresh_metrics(warehouse, today, today)
    merged = transactions.get("rows_merged", 0)
    return dg.Output(merged, metadata={
        "date": dates[0], "transactions_merged": merged,
        "labels_applied": transactions.get("labels_applied", 0),
        "predictions_merged": predictions["rows_merged"], **metrics,
    })  # fmt: skip


@dg.job(description="The warehouse between nightly runs: today's partial day, every hour. The "
        "nightly run reloads the day from the processed layer (same keys: no copies).")  # fmt: skip
def warehouse_hourly() -> None:
    refresh_today()


warehouse_hourly_schedule = dg.ScheduleDefinition(
    job=warehouse_hourly, cron_schedule="5 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)

defs = dg.Definitions(
    assets=[
        users_dimension,
        merchants_dimension,
        date_dimension,
        transactions_fact,
        model_predictions_fact,
        daily_business_metrics,
    ],
    jobs=[warehouse_hourly],
    schedules=[warehouse_hourly_schedule],
)
