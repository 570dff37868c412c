"""Incremental, idempotent loads: rows are staged, then merged into their table by key.

A load of the same rows twice leaves the table as one load did; a row whose key is already
there replaces it (a label arriving updates its transaction's `is_fraud`). Both backends run
the same MERGE. The rows reach the stage the fastest way each backend offers: DuckDB reads
the Arrow table in place; Snowflake gets multi-row INSERTs (the connector's `write_pandas`
stages files through PUT, which the fakesnow server of the tests does not serve).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from fraud_platform.warehouse.schema import Table

INSERT_CHUNK = 1_000  # rows per INSERT on Snowflake


class LoadError(ValueError):
    """Rows that do not fit their table."""


def conform(table: Table, rows: pa.Table) -> pa.Table:
    """The table's columns in its order, one row per key (the last one wins, as a later
    event supersedes an earlier one in the same load)."""
    missing = [name for name in table.column_names if name not in rows.column_names]
    if missing:
        raise LoadError(f"{table.name}: the rows lack column(s) {', '.join(missing)}")
    rows = rows.select(table.column_names)
    for name in table.key:
        nulls = rows[name].null_count
        if nulls:
            raise LoadError(f"{table.name}: {nulls} row(s) without {name}, its key")
    if rows.num_rows == 0:
        return rows
    numbered = rows.append_column("_row", pa.array(range(rows.num_rows), pa.int64()))
    last = numbered.group_by(list(table.key)).aggregate([("_row", "max")])
    return rows.take(sorted(last["_row_max"].to_pylist()))


def merge_sql(table: Table, stage: str) -> str:
    keys = " AND ".join(f"t.{k} = s.{k}" for k in table.key)
    others = [c for c in table.column_names if c not in table.key]
    updates = ", ".join(f"{c} = s.{c}" for c in others)
    columns = ", ".join(table.column_names)
    values = ", ".join(f"s.{c}" for c in table.column_names)
    return (
        f"MERGE INTO {table.name} AS t USING {stage} AS s ON {keys} "
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})"
    )


def upsert(connection: Any, backend: str, table: Table, rows: pa.Table) -> int:
    """Merge `rows` into `table` by its key; returns the number of distinct keys loaded."""
    rows = conform(table, rows)
    if rows.num_rows == 0:
        return 0
    stage = f"{table.name}_stage"
    if backend == "duckdb":
        connection.register(stage, rows)
        try:
            connection.execute(merge_sql(table, stage))
        finally:
            connection.unregister(stage)
        return rows.num_rows
    cursor = connection.cursor()
    cursor.execute(f"CREATE OR REPLACE TEMPORARY TABLE {stage} LIKE {table.name}")
    try:
        _insert(cursor, stage, table, rows)
        cursor.execute(merge_sql(table, stage))
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {stage}")
    return rows.num_rows


def _insert(cursor: Any, stage: str, table: Table, rows: pa.Table) -> None:
    columns = ", ".join(table.column_names)
    row_marks = "(" + ", ".join(["%s"] * len(table.columns)) + ")"
    for start in range(0, rows.num_rows, INSERT_CHUNK):
        chunk = rows.slice(start, INSERT_CHUNK).to_pylist()
        marks = ", ".join([row_marks] * len(chunk))
        values = [row[name] for row in chunk for name in table.column_names]
        cursor.execute(f"INSERT INTO {stage} ({columns}) VALUES {marks}", values)
