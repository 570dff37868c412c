"""The SQL of the feature stage, generated from the catalog, in each engine's dialect.

Window frames are `RANGE BETWEEN <window> PRECEDING AND 1 PRECEDING` over epoch
milliseconds: strictly earlier events only (the catalog's point-in-time rule). Label counts
join fraud labels whose investigation completed before the transaction.

The batch runs it on Spark; DuckDB runs the very same statement (the batch benchmark, and a
single-machine engine for small lakes). Only the spellings in `Dialect` differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from fraud_platform.features.catalog import (
    CATALOG,
    DERIVED_FEATURES,
    LABEL_FEATURES,
    ROW_FEATURES,
    Feature,
)

ID_COLUMNS = ["transaction_id", "user_id", "merchant_id", "timestamp", "ts_ms"]


@dataclass(frozen=True)
class Dialect:
    """How an engine spells the two window functions standard SQL leaves open."""

    count_distinct: str  # over a window; {value} and {frame}
    arg_max: str  # {value} of the row with the largest {key} (null keys skipped) in {frame}


DIALECTS = {
    "spark": Dialect(
        count_distinct="SIZE(COLLECT_SET({value}) OVER ({frame}))",
        arg_max="MAX_BY({value}, {key}) OVER ({frame})",
    ),
    "duckdb": Dialect(
        count_distinct="COUNT(DISTINCT {value}) OVER ({frame})",
        arg_max="ARG_MAX({value}, {key}) OVER ({frame})",
    ),
}
# The user's previous device: of the latest earlier transactions with a device, the one with
# the largest transaction_id. The tie-break makes it one answer when two earlier transactions
# share a millisecond (engines order such peers differently).
PREVIOUS_DEVICE_KEY = (
    "CASE WHEN device_id IS NOT NULL "
    "THEN LPAD(CAST(ts_ms AS STRING), 16, '0') || transaction_id END"
)


def _frame(feature: Feature) -> str:
    return (
        f"PARTITION BY {feature.key} ORDER BY ts_ms "
        f"RANGE BETWEEN {feature.window_ms} PRECEDING AND 1 PRECEDING"
    )


def _window_sql(feature: Feature, dialect: Dialect) -> str:
    frame = _frame(feature)
    if feature.aggregate == "COUNT_DISTINCT":
        return dialect.count_distinct.format(value=feature.value, frame=frame)
    expression = f"{feature.aggregate}({feature.value}) OVER ({frame})"
    if feature.aggregate in ("COUNT", "SUM"):
        return f"COALESCE({expression}, 0)"
    return expression


def feature_sql(transactions: str, labels: str, dialect: str = "spark") -> str:
    """SQL computing every catalog feature for each row of the `transactions` view.

    `transactions` must hold the rows to featurize and the history before them (the longest
    window); `labels` holds (transaction_id, is_fraud, complete_ms).
    """
    spelling = DIALECTS[dialect]
    sequence = (
        "PARTITION BY user_id ORDER BY ts_ms RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    )
    windowed = [f for f in CATALOG if f.kind == "window"]
    longest_label_ms = max(f.window_ms for f in LABEL_FEATURES)
    label_counts = ",\n    ".join(
        f"SUM(CASE WHEN f.tx_ms >= t.ts_ms - {f.window_ms} THEN 1 ELSE 0 END) AS {f.name}"
        for f in LABEL_FEATURES
    )
    row_columns = ",\n    ".join(
        f"CAST({f.expression} AS {f.dtype}) AS {f.name}" for f in ROW_FEATURES
    )
    window_columns = ",\n    ".join(f"{_window_sql(f, spelling)} AS {f.name}" for f in windowed)
    label_columns = ",\n    ".join(f"COALESCE(c.{f.name}, 0) AS {f.name}" for f in LABEL_FEATURES)
    derived_columns = ",\n  ".join(
        f"CAST({f.expression} AS {f.dtype}) AS {f.name}" for f in DERIVED_FEATURES
    )
    return f"""
WITH sequenced AS (
  SELECT *,
    MAX(ts_ms) OVER ({sequence}) AS prev_ts_ms,
    {spelling.arg_max.format(value="device_id", key=PREVIOUS_DEVICE_KEY, frame=sequence)}
      AS prev_device_id
  FROM {transactions}
),
base AS (
  SELECT *,
    CASE WHEN prev_device_id IS NOT NULL AND device_id IS NOT NULL
              AND device_id <> prev_device_id THEN 1 ELSE 0 END AS device_changed
  FROM sequenced
),
windowed AS (
  SELECT {", ".join(ID_COLUMNS)},
    {row_columns},
    {window_columns}
  FROM base
),
fraud_events AS (
  SELECT b.merchant_id, b.ts_ms AS tx_ms, l.complete_ms
  FROM base b JOIN {labels} l ON l.transaction_id = b.transaction_id AND l.is_fraud
),
label_counts AS (
  SELECT t.transaction_id,
    {label_counts}
  FROM base t JOIN fraud_events f
    ON f.merchant_id = t.merchant_id AND f.tx_ms < t.ts_ms
   AND f.tx_ms >= t.ts_ms - {longest_label_ms} AND f.complete_ms < t.ts_ms
  GROUP BY t.transaction_id
),
combined AS (
  SELECT w.*, {label_columns}
  FROM windowed w LEFT JOIN label_counts c ON c.transaction_id = w.transaction_id
)
SELECT {", ".join(ID_COLUMNS)},
  {", ".join(f.name for f in CATALOG if f.kind != "derived")},
  {derived_columns}
FROM combined
"""


def compute_features(spark, transactions, labels):
    """Features of every row of `transactions` (a Spark DataFrame of processed rows plus
    history), on Spark."""
    transactions.createOrReplaceTempView("feature_transactions")
    labels.createOrReplaceTempView("feature_labels")
    return spark.sql(feature_sql("feature_transactions", "feature_labels", "spark"))
