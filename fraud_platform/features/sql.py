"""The SQL of the feature stage, generated from the catalog, in each engine's dialect.

Window frames are `RANGE BETWEEN <window> PRECEDING AND 1 PRECEDING` over epoch
milliseconds: strictly earlier events only (the catalog's point-in-time rule); a delayed
window's frame ends the label delay earlier. Label features join the entity's fraud labels
whose transaction lies in the delayed window and whose investigation completed before the
transaction.

The batch runs it on Spark; DuckDB runs the very same statement (the batch benchmark, and a
single-machine engine for small lakes). Only the spellings in `Dialect` differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from fraud_platform.features.catalog import (
    CATALOG,
    DAY_MS,
    DERIVED_FEATURES,
    LABEL_DELAY_DAYS,
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


def _frame(feature: Feature, delay_ms: int) -> str:
    shift = delay_ms if feature.shifted else 0
    return (
        f"PARTITION BY {feature.key} ORDER BY ts_ms "
        f"RANGE BETWEEN {feature.window_ms + shift} PRECEDING AND {shift + 1} PRECEDING"
    )


def _window_sql(feature: Feature, dialect: Dialect, delay_ms: int) -> str:
    frame = _frame(feature, delay_ms)
    if feature.aggregate == "COUNT_DISTINCT":
        return dialect.count_distinct.format(value=feature.value, frame=frame)
    expression = f"{feature.aggregate}({feature.value}) OVER ({frame})"
    if feature.aggregate in ("COUNT", "SUM"):
        return f"COALESCE({expression}, 0)"
    return expression


def _label_sql(feature: Feature, delay_ms: int) -> str:
    """One label feature as an aggregate over the joined frauds `f` of transaction `t`."""
    in_window = f"f.tx_ms >= t.ts_ms - {delay_ms + feature.window_ms}"
    if feature.aggregate == "COUNT":
        return f"SUM(CASE WHEN {in_window} THEN 1 ELSE 0 END)"
    extreme = {"FIRST": "MIN", "LAST": "MAX"}[feature.aggregate]
    return f"(MIN(t.ts_ms) - {extreme}(CASE WHEN {in_window} THEN f.tx_ms END)) / 1000.0"


def _label_counts(entity: str, delay_ms: int) -> str:
    """The CTE of one entity's label features, a row per transaction with any known fraud."""
    features = [f for f in LABEL_FEATURES if f.entity == entity]
    longest = max(f.window_ms for f in features)
    key = features[0].key
    columns = ",\n    ".join(f"{_label_sql(f, delay_ms)} AS {f.name}" for f in features)
    return f"""{entity}_labels AS (
  SELECT t.transaction_id,
    {columns}
  FROM base t JOIN fraud_events f
    ON f.{key} = t.{key} AND f.tx_ms < t.ts_ms - {delay_ms}
   AND f.tx_ms >= t.ts_ms - {delay_ms + longest} AND f.complete_ms < t.ts_ms
  GROUP BY t.transaction_id
)"""


def _label_column(feature: Feature) -> str:
    value = f"{feature.entity}_labels.{feature.name}"
    return f"COALESCE({value}, 0)" if feature.aggregate == "COUNT" else value


def feature_sql(
    transactions: str,
    labels: str,
    dialect: str = "spark",
    label_delay_days: int = LABEL_DELAY_DAYS,
) -> str:
    """SQL computing every catalog feature for each row of the `transactions` view.

    `transactions` must hold the rows to featurize and the history before them (the catalog's
    history_days); `labels` holds (transaction_id, is_fraud, complete_ms).
    """
    spelling = DIALECTS[dialect]
    delay_ms = label_delay_days * DAY_MS
    sequence = (
        "PARTITION BY user_id ORDER BY ts_ms RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    )
    windowed = [f for f in CATALOG if f.kind == "window"]
    entities = sorted({f.entity for f in LABEL_FEATURES})
    row_columns = ",\n    ".join(
        f"CAST({f.expression} AS {f.dtype}) AS {f.name}" for f in ROW_FEATURES
    )
    window_columns = ",\n    ".join(
        f"{_window_sql(f, spelling, delay_ms)} AS {f.name}" for f in windowed
    )
    label_ctes = ",\n".join(_label_counts(entity, delay_ms) for entity in entities)
    label_joins = "\n  ".join(
        f"LEFT JOIN {e}_labels ON {e}_labels.transaction_id = w.transaction_id" for e in entities
    )
    label_columns = ",\n    ".join(f"{_label_column(f)} AS {f.name}" for f in LABEL_FEATURES)
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
known_frauds AS (
  SELECT transaction_id, MIN(complete_ms) AS complete_ms
  FROM {labels} WHERE is_fraud GROUP BY transaction_id
),
fraud_events AS (
  SELECT b.user_id, b.merchant_id, b.ts_ms AS tx_ms, k.complete_ms
  FROM base b JOIN known_frauds k ON k.transaction_id = b.transaction_id
),
{label_ctes},
combined AS (
  SELECT w.*,
    {label_columns}
  FROM windowed w
  {label_joins}
)
SELECT {", ".join(ID_COLUMNS)},
  {", ".join(f.name for f in CATALOG if f.kind != "derived")},
  {derived_columns}
FROM combined
"""


def compute_features(spark, transactions, labels, label_delay_days: int = LABEL_DELAY_DAYS):
    """Features of every row of `transactions` (a Spark DataFrame of processed rows plus
    history), on Spark."""
    transactions.createOrReplaceTempView("feature_transactions")
    labels.createOrReplaceTempView("feature_labels")
    return spark.sql(
        feature_sql("feature_transactions", "feature_labels", "spark", label_delay_days)
    )
