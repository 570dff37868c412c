"""Incremental, idempotent loads: rows are staged, then merged into their table by key.

A load of the same rows twice leaves the table as one load did; a row whose key is already
there replaces it (a label arriving updates its transaction's `is_fraud`). Both backends run
the same MERGE. The rows reach the stage the fastest way each backend offers: DuckDB reads
the Arrow table in place; Snowflake gets multi-row INSERTs (the connector's `write_pandas`
stages files through PUT, which the fakesnow server of the tests does not serve).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from fraud_platform.warehouse.schema import Table

INSERT_CHUNK = 1_000  # rows per INSERT on Snowflake


class LoadError(ValueError):
    """Rows that do not fit their table."""


def conform(table: Table, rows: pa.Table, columns: Sequence[str] | None = None) -> pa.Table:
    """`columns` (default: all the table's) in the table's order, one row per key (the
    last one wins, as a later event supersedes an earlier one in the same load)."""
    columns = list(columns or table.column_names)
    missing = [name for name in columns if name not in rows.column_names]
    if missing:
        raise LoadError(f"{table.name}: the rows lack column(s) {', '.join(missing)}")
    rows = rows.select(columns)
    for name in table.key:
        nulls = rows[name].null_count
        if nulls:
            raise LoadError(f"{table.name}: {nulls} row(s) without {name}, its key")
    if rows.num_rows == 0:
        return rows
    numbered = rows.append_column("_row", pa.array(range(rows.num_rows), pa.int64()))
    last = numbered.group_by(list(table.key)).aggregate([("_row", "max")])
    return rows.take(sorted(last["_row_max"].to_pylist()))


def merge_sql(table: Table, stage: str, columns: list[str], update: list[str],
              insert: bool) -> str:  # fmt: skip
    """The statement that brings the stage's rows into the table. Without inserts it is an
    UPDATE ... FROM: the same in both dialects, and fakesnow cannot run a MERGE that has no
    WHEN NOT MATCHED clause."""
    keys = " AND ".join(f"t.{k} = s.{k}" for k in table.key)
    sets = ", ".join(f"{c} = s.{c}" for c in update)
    if not insert:
        return f"UPDATE {table.name} AS t SET {sets} FROM {stage} AS s WHERE {keys}"
    sql = f"MERGE INTO {table.name} AS t USING {stage} AS s ON {keys}"
    if update:
        sql += f" WHEN MATCHED THEN UPDATE SET {sets}"
    values = ", ".join(f"s.{c}" for c in columns)
    return sql + f" WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) VALUES ({values})"


def upsert(
    connection: Any,
    backend: str,
    table: Table,
    rows: pa.Table,
    *,
    update: Sequence[str] | None = None,
    insert: bool = True,
) -> int:
    """Merge `rows` into `table` by its key; returns the number of distinct keys loaded.

    `update`: the columns a row already there takes from the load (default: all but the
    key), so a reload of transactions can leave their labels alone. `insert=False` only
    updates rows already there (a label for a loaded transaction); the rows then need only
    the key and `update`.
    """
    others = [c for c in table.column_names if c not in table.key]
    update = list(others if update is None else update)
    unknown = [c for c in update if c not in others]
    if unknown:
        raise LoadError(f"{table.name}: cannot update {', '.join(unknown)}")
    if not insert and not update:
        raise LoadError(f"{table.name}: a load that inserts nothing must update something")
    columns = table.column_names if insert else [*table.key, *update]
    rows = conform(table, rows, columns)
    if rows.num_rows == 0:
        return 0
    stage = f"{table.name}_stage"
    sql = merge_sql(table, stage, columns, update, insert)
    if backend == "duckdb":
        connection.register(stage, rows)
        try:
            connection.execute(sql)
        finally:
            connection.unregister(stage)
        return rows.num_rows
    types = dict(table.columns)
    cursor = connection.cursor()
    definition = ", ".join(f"{c} {types[c]}" for c in columns)
    cursor.execute(f"CREATE OR REPLACE TEMPORARY TABLE {stage} ({definition})")
    try:
        _insert(cursor, stage, columns, rows)
        cursor.execute(sql)
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {stage}")
    return rows.num_rows


def _insert(cursor: Any, stage: str, columns: list[str], rows: pa.Table) -> None:
    row_marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for start in range(0, rows.num_rows, INSERT_CHUNK):
        chunk = rows.slice(start, INSERT_CHUNK).to_pylist()
        marks = ", ".join([row_marks] * len(chunk))
        values = [row[name] for row in chunk for name in columns]
        cursor.execute(f"INSERT INTO {stage} ({', '.join(columns)}) VALUES {marks}", values)
