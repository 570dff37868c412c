"""Raw -> processed -> features, as Spark DataFrame code over lake partitions."""

from __future__ import annotations

from datetime import date, timedelta

from fraud_platform.features.catalog import LABEL_DELAY_DAYS, history_days
from fraud_platform.features.sql import compute_features
from fraud_platform.lake import (
    LABELS,
    MERCHANTS,
    PROCESSED_TRANSACTIONS_PATH,
    RAW_TRANSACTIONS,
    USERS,
    existing_dates,
    row_count,
)


def date_range(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def read_dates(spark, lake, path: str, dates: list[str], schema=None):
    """The `date=` partitions of a lake table that exist among `dates`, or None. With the
    table's pyarrow `schema`, files written before a column was added read it as null
    (without it, Spark takes the columns of whichever file it samples)."""
    present = existing_dates(lake, path, dates)
    if not present:
        return None
    reader = spark.read.option("basePath", lake.uri(path))
    if schema is not None:
        from pyspark.sql.pandas.types import from_arrow_schema

        reader = reader.schema(from_arrow_schema(schema))
    return reader.parquet(*[lake.uri(path, f"date={d}") for d in present]).drop("hour")


def read_reference(spark, lake, path: str, key: str):
    """A reference table (every source's file), one row per key."""
    from pyarrow.fs import FileType

    filesystem, base = lake.filesystem()
    if filesystem.get_file_info(f"{base}/{path}").type != FileType.Directory:
        return None
    return spark.read.parquet(lake.uri(path)).dropDuplicates([key])


def process_transactions(spark, lake, dates: list[str]):
    """Typed, deduplicated (first by time, then Kafka position) and joined with users and
    merchants. Returns (DataFrame, raw row count) or (None, 0) when no raw data exists.

    The device id, personal data under GDPR, is pseudonymized here: a keyed SHA-256
    (FRAUD_PSEUDONYM_KEY) equal for equal devices, so the features that compare devices
    (`device_changed`) are unchanged while the processed layer holds no device id."""
    from fraud_platform.governance.secrets import signing_key

    raw = read_dates(spark, lake, RAW_TRANSACTIONS.path, dates, RAW_TRANSACTIONS.schema)
    if raw is None:
        return None, 0
    raw_rows = row_count(lake, RAW_TRANSACTIONS.path, dates)
    raw.createOrReplaceTempView("raw_transactions")
    users = read_reference(spark, lake, USERS.path, "user_id")
    merchants = read_reference(spark, lake, MERCHANTS.path, "merchant_id")
    (users or spark.createDataFrame([], USERS_EMPTY)).createOrReplaceTempView("users")
    (merchants or spark.createDataFrame([], MERCHANTS_EMPTY)).createOrReplaceTempView("merchants")
    processed = spark.sql(
        """
        WITH ranked AS (
          SELECT *, ROW_NUMBER() OVER (
            PARTITION BY transaction_id
            ORDER BY `timestamp`, source_partition NULLS LAST, source_offset NULLS LAST) AS rank
          FROM raw_transactions
        )
        SELECT r.transaction_id, r.user_id, r.merchant_id, r.amount, r.currency, r.`timestamp`,
               unix_millis(r.`timestamp`) AS ts_ms, r.lat, r.lon, r.country, r.device,
               sha2(concat(:pseudonym_key, r.device_id), 256) AS device_id,
               r.channel, r.card_last4, r.card_token, r.declined,
               u.home_lat, u.home_lon, u.home_country, u.account_type, u.kyc_status,
               m.category AS merchant_category, m.risk_tier AS merchant_risk_tier,
               m.country AS merchant_country,
               CAST(r.date AS STRING) AS date
        FROM ranked r
        LEFT JOIN users u ON u.user_id = r.user_id
        LEFT JOIN merchants m ON m.merchant_id = r.merchant_id
        WHERE r.rank = 1
        """,
        args={"pseudonym_key": signing_key("FRAUD_PSEUDONYM_KEY").decode()},
    )
    return processed, raw_rows


USERS_EMPTY = (
    "user_id string, home_lat double, home_lon double, home_country string, "
    "account_type string, kyc_status string"
)
MERCHANTS_EMPTY = "merchant_id string, category string, risk_tier string, country string"


def feature_rows(spark, lake, dates: list[str], label_delay_days: int = LABEL_DELAY_DAYS):
    """Catalog features of the transactions of `dates`, from processed rows of those dates and
    the history before them that the features read, and every label known by the last date."""
    first = date.fromisoformat(dates[0])
    start = first - timedelta(days=history_days(label_delay_days))
    history = date_range(start.isoformat(), dates[-1])
    transactions = read_dates(spark, lake, PROCESSED_TRANSACTIONS_PATH, history)
    if transactions is None:
        return None
    labels = read_dates(spark, lake, LABELS.path, history)
    if labels is None:
        labels = spark.createDataFrame(
            [], "transaction_id string, is_fraud boolean, complete_ms bigint"
        )
    else:
        labels = labels.selectExpr(
            "transaction_id", "is_fraud", "unix_millis(investigation_complete_time) AS complete_ms"
        )
    features = compute_features(spark, transactions, labels, label_delay_days)
    wanted = ", ".join(f"'{d}'" for d in dates)
    return features.where(f"CAST(to_date(`timestamp`) AS STRING) IN ({wanted})").selectExpr(
        "*", "CAST(to_date(`timestamp`) AS STRING) AS date"
    )


def write_partitions(frame, lake, path: str) -> None:
    """Overwrite exactly the `date=` partitions present in `frame` (dynamic overwrite)."""
    frame.write.mode("overwrite").partitionBy("date").parquet(lake.uri(path))
