"""Daily business metrics, computed in the warehouse from its facts (one SQL for both
backends) and merged by day, so a day recomputed after late labels replaces its row.

A transaction counts with its latest prediction (a re-scored transaction keeps one id, but a
new model version may score it again). "Caught" is fraud the model sent to review or
declined; precision is over the flagged transactions whose label has matured.
"""

from __future__ import annotations

from typing import Any

from fraud_platform.warehouse.loading import merge_sql
from fraud_platform.warehouse.schema import DAILY_BUSINESS_METRICS

METRICS_SQL = """
WITH latest AS (
  SELECT transaction_id, decision FROM (
    SELECT transaction_id, decision,
           ROW_NUMBER() OVER (PARTITION BY transaction_id ORDER BY predicted_at DESC,
                              prediction_id DESC) AS n
    FROM model_predictions_fact
  ) ranked WHERE n = 1
),
counts AS (
  SELECT
    t.date_id,
    COUNT(*) AS transactions,
    SUM(t.amount) AS amount_total,
    COUNT(p.transaction_id) AS predictions,
    SUM(CASE WHEN p.decision = 'review' THEN 1 ELSE 0 END) AS reviewed,
    SUM(CASE WHEN p.decision = 'decline' THEN 1 ELSE 0 END) AS declined_by_model,
    SUM(CASE WHEN t.is_fraud THEN 1 ELSE 0 END) AS labelled_fraud,
    SUM(CASE WHEN t.is_fraud AND p.decision IN ('review', 'decline') THEN 1 ELSE 0 END)
      AS fraud_caught,
    SUM(CASE WHEN t.is_fraud IS NOT NULL AND p.decision IN ('review', 'decline')
        THEN 1 ELSE 0 END) AS flagged_labelled
  FROM transactions_fact t LEFT JOIN latest p ON p.transaction_id = t.transaction_id
  WHERE t.date_id BETWEEN {first} AND {last}
  GROUP BY t.date_id
)
SELECT date_id, transactions, amount_total, predictions, reviewed, declined_by_model,
       reviewed * 1.0 / NULLIF(predictions, 0) AS review_rate,
       labelled_fraud, fraud_caught,
       fraud_caught * 1.0 / NULLIF(labelled_fraud, 0) AS fraud_caught_rate,
       fraud_caught * 1.0 / NULLIF(flagged_labelled, 0) AS flagged_precision
FROM counts
"""


def refresh_daily_metrics(connection: Any, first_id: int, last_id: int) -> None:
    """Recompute the metrics of the days from `first_id` to `last_id` (yyyymmdd keys)."""
    columns = DAILY_BUSINESS_METRICS.column_names
    source = METRICS_SQL.format(first=int(first_id), last=int(last_id))
    statement = merge_sql(DAILY_BUSINESS_METRICS, f"({source})", columns, columns[1:], True)
    connection.cursor().execute(statement)


def daily_metrics(connection: Any, first_id: int, last_id: int) -> list[dict]:
    """The stored metrics of those days, oldest first."""
    cursor = connection.cursor()
    cursor.execute(
        f"SELECT {', '.join(DAILY_BUSINESS_METRICS.column_names)} "
        f"FROM {DAILY_BUSINESS_METRICS.name} "
        f"WHERE date_id BETWEEN {int(first_id)} AND {int(last_id)} ORDER BY date_id"
    )
    names = DAILY_BUSINESS_METRICS.column_names
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
