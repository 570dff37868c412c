"""Nightly entity profiles (user baselines, merchant risk) and their push to Redis."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from fraud_platform.batch.processing import date_range, read_dates
from fraud_platform.features.catalog import (
    DAY_MS,
    MERCHANT_PROFILE,
    USER_PROFILE,
    WINDOWS_MS,
    ProfileField,
)
from fraud_platform.features.online import PROFILE_KEYS
from fraud_platform.lake import LABELS, PROCESSED_TRANSACTIONS_PATH


def _profile_sql(entity: str, fields: list[ProfileField], end_ms: int) -> str:
    def column(f: ProfileField) -> str:
        in_window = f"CASE WHEN ts_ms >= {end_ms - WINDOWS_MS[f.window]} THEN {f.value} END"
        if f.aggregate == "COUNT_DISTINCT":
            return f"COUNT(DISTINCT {in_window}) AS {f.name}"
        if f.aggregate == "COUNT":
            return f"COUNT({in_window}) AS {f.name}"
        return f"CAST({f.aggregate}({in_window}) AS DOUBLE) AS {f.name}"

    key = f"{entity}_id"
    columns = ",\n  ".join(column(f) for f in fields)
    return f"SELECT {key},\n  {columns}\nFROM profile_input GROUP BY {key}"


def profiles(spark, lake, day: str):
    """(users, merchants) DataFrames of the profiles as of the end of `day`, or None."""
    end = date.fromisoformat(day) + timedelta(days=1)
    end_ms = int((end - date(1970, 1, 1)).days * DAY_MS)
    history = date_range((end - timedelta(days=90)).isoformat(), day)
    transactions = read_dates(spark, lake, PROCESSED_TRANSACTIONS_PATH, history)
    if transactions is None:
        return None
    labels = read_dates(spark, lake, LABELS.path, history)
    known = (
        labels.where(f"is_fraud AND unix_millis(investigation_complete_time) < {end_ms}")
        .select("transaction_id")
        .distinct()
        .withColumn("known_fraud", _true())
        if labels is not None
        else spark.createDataFrame([], "transaction_id string, known_fraud boolean")
    )
    frame = transactions.where(f"ts_ms < {end_ms}").join(known, "transaction_id", "left")
    frame.fillna({"known_fraud": False}).createOrReplaceTempView("profile_input")
    users = spark.sql(_profile_sql("user", USER_PROFILE, end_ms))
    merchants = spark.sql(_profile_sql("merchant", MERCHANT_PROFILE, end_ms))
    return users, merchants


def _true():
    from pyspark.sql.functions import lit

    return lit(True)


def push_profiles(rows: Iterable[dict], entity: str, redis_url: str, ttl_days: int = 7) -> int:
    """HSET each profile (a row of the written profiles, read back from the lake: a few dozen
    numbers per entity) as the entity's hash, pipelined; returns how many."""
    import redis

    key_template = PROFILE_KEYS[entity]
    key_column = f"{entity}_id"
    ttl = ttl_days * 86_400
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    pushed = 0
    for pushed, row in enumerate(rows, 1):
        values = {k: ("" if v is None else v) for k, v in row.items() if k != key_column}
        key = key_template.format(row[key_column])
        pipe.hset(key, mapping=values)
        pipe.expire(key, ttl)
        if pushed % 1_000 == 0:
            pipe.execute()
    pipe.execute()
    client.close()
    return pushed
