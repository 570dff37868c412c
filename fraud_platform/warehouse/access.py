"""The analyst's side of the embedded warehouse: a separate DuckDB file holding copies of the
aggregated tables only. Analysts open it read-only (`WarehouseResource.connect` does so for
their role); raw transactions are not in it, so no query, grant or view can reach them."""

from __future__ import annotations

from fraud_platform.governance.rbac import AGGREGATE_TABLES


def publish_aggregates(connection, analyst_path: str) -> list[str]:
    """Replace the analyst database's copies of the aggregated tables from `connection`'s."""
    cursor = connection.cursor()
    cursor.execute(f"ATTACH '{analyst_path}' AS analyst")
    try:
        for table in AGGREGATE_TABLES:
            cursor.execute(f"CREATE OR REPLACE TABLE analyst.{table} AS SELECT * FROM {table}")
    finally:
        cursor.execute("DETACH analyst")
    return list(AGGREGATE_TABLES)
