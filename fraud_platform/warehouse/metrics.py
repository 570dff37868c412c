"""Daily business metrics, computed in the warehouse from its facts (one SQL for both
backends) and merged by day, so a day recomputed after late labels replaces its row.

A transaction counts with its latest prediction (a re-scored transaction keeps one id, but a
new model version may score it again). "Caught" is fraud the model sent to review or
declined; precision is over the flagged transactions whose label has matured.
"""

from __future__ import annotations

from typing import Any

from fraud_platform.warehouse.schema import DAILY_BUSINESS_METRICS

FLAGGED = "p.decision IN ('review', 'decline')"

METRICS_SQL = f"""
WITH latest AS (
  SELECT transaction_id, decision FROM (
    SELECT transaction_id, decision,
           ROW_NUMBER() OVER (PARTITION BY transaction_id ORDER BY predicted_at DESC,
                              prediction_id DESC) AS n
    FROM model_predictions_fact
  ) ranked WHERE n = 1
)
SELECT
  t.date_id,
  COUNT(*) AS transactions,
  SUM(t.amount) AS amount_total,
  COUNT(p.transaction_id) AS predictions,
  SUM(CASE WHEN p.decision = 'review' THEN 1 ELSE 0 END) AS reviewed,
  SUM(CASE WHEN p.decision = 'decline' THEN 1 ELSE 0 END) AS declined_by_model,
  SUM(CASE WHEN p.decision = 'review' THEN 1 ELSE 0 END) * 1.0
    / NULLIF(COUNT(p.transaction_id), 0) AS review_rate,
  SUM(CASE WHEN t.is_fraud THEN 1 ELSE 0 END) AS labelled_fraud,
  SUM(CASE WHEN t.is_fraud AND {FLAGGED} THEN 1 ELSE 0 END) AS fraud_caught,
  SUM(CASE WHEN t.is_fraud AND {FLAGGED} THEN 1 ELSE 0 END) * 1.0
    / NULLIF(SUM(CASE WHEN t.is_fraud THEN 1 ELSE 0 END), 0) AS fraud_caught_rate,
  SUM(CASE WHEN t.is_fraud AND {FLAGGED} THEN 1 ELSE 0 END) * 1.0
    / NULLIF(SUM(CASE WHEN t.is_fraud IS NOT NULL AND {FLAGGED} THEN 1 ELSE 0 END), 0)
    AS flagged_precision
FROM transactions_fact t LEFT JOIN latest p ON p.transaction_id = t.transaction_id
WHERE t.date_id BETWEEN {{first}} AND {{last}}
GROUP BY t.date_id
"""


def refresh_daily_metrics(connection: Any, first_id: int, last_id: int) -> None:
    """Recompute the metrics of the days from `first_id` to `last_id` (yyyymmdd keys)."""
    columns = DAILY_BUSINESS_METRICS.column_names
    updates = ", ".join(f"{c} = s.{c}" for c in columns[1:])
    source = METRICS_SQL.format(first=int(first_id), last=int(last_id))
    cursor = connection.cursor()
    cursor.execute(
        f"MERGE INTO {DAILY_BUSINESS_METRICS.name} AS t USING ({source}) AS s "
        "ON t.date_id = s.date_id "
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) "
        f"VALUES ({', '.join('s.' + c for c in columns)})"
    )


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
