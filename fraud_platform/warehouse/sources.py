"""The warehouse's rows, read from the lake with pyarrow (no Spark: these are selections and
renames, not computations).

Timestamps become naive UTC (the warehouse's TIMESTAMP columns hold UTC wall time, so no
session time zone of either backend can shift them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow.fs import FileType

from fraud_platform.lake import (
    LABELS,
    MERCHANTS,
    PREDICTIONS,
    PROCESSED_TRANSACTIONS_PATH,
    USERS,
    dataset,
    existing_dates,
)
from fraud_platform.warehouse.calendar import date_id
from fraud_platform.warehouse.schema import (
    AUDIT_LOG,
    MERCHANTS_DIMENSION,
    MODEL_PREDICTIONS_FACT,
    TRANSACTIONS_FACT,
    USERS_DIMENSION,
)

LABEL_COLUMNS = ("is_fraud", "fraud_type", "labelled_at")
# What a reload of transactions updates: not their key, not their labels (those come apart).
TRANSACTION_ATTRIBUTES = tuple(
    c for c in TRANSACTIONS_FACT.column_names if c not in (*TRANSACTIONS_FACT.key, *LABEL_COLUMNS)
)


def _naive(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(column, pa.timestamp("us"))


def _date_ids(column: pa.ChunkedArray) -> pa.Array:
    days = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.date32())
    return pa.array([date_id(d) if d else None for d in days.to_pylist()], pa.int32())


def _column(table: pa.Table, name: str, type_: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """A column, or nulls for files written before it was added."""
    return table[name] if name in table.column_names else pa.nulls(table.num_rows, type_)


def _read(lake, path: str, dates: Iterable[str]) -> pa.Table | None:
    present = existing_dates(lake, path, list(dates))
    if not present:
        return None
    tables = [dataset(lake, f"{path}/date={d}").to_table() for d in present]
    return pa.concat_tables(tables, promote_options="default")


def transaction_rows(
    lake, dates: list[str], path: str = PROCESSED_TRANSACTIONS_PATH
) -> pa.Table | None:
    """The transactions of `dates` (without labels) from the processed layer, or from the
    raw one for a day not processed yet; None if there are none."""
    processed = _read(lake, path, dates)
    if processed is None:
        return None
    return pa.table({
        "transaction_id": processed["transaction_id"], "user_id": processed["user_id"],
        "merchant_id": processed["merchant_id"], "date_id": _date_ids(processed["timestamp"]),
        "transaction_time": _naive(processed["timestamp"]), "amount": processed["amount"],
        "currency": processed["currency"], "country": processed["country"],
        "channel": processed["channel"], "card_last4": processed["card_last4"],
        "card_token": _column(processed, "card_token", pa.string()),
        "declined": processed["declined"],
        # New rows start unlabelled; label_rows brings the verdicts.
        "is_fraud": pa.nulls(processed.num_rows, pa.bool_()),
        "fraud_type": pa.nulls(processed.num_rows, pa.string()),
        "labelled_at": pa.nulls(processed.num_rows, pa.timestamp("us")),
    })  # fmt: skip


def label_rows(lake, transaction_dates: list[str], completed_dates: list[str]) -> pa.Table:
    """Matured labels of the transactions of `transaction_dates` (whenever completed), and
    every label completed on `completed_dates` (a late verdict on an older transaction)."""
    empty = pa.table({"transaction_id": pa.array([], pa.string()),
                      "is_fraud": pa.array([], pa.bool_()),
                      "fraud_type": pa.array([], pa.string()),
                      "labelled_at": pa.array([], pa.timestamp("us"))})  # fmt: skip
    if not _exists(lake, LABELS.path):
        return empty
    labels = dataset(lake, LABELS.path)
    days = [date.fromisoformat(d) for d in transaction_dates]
    on_days = pc.field("transaction_time").cast(pa.date32()).isin(days)
    table = labels.to_table(filter=on_days)
    completed = _read(lake, LABELS.path, completed_dates)
    if completed is not None:
        table = pa.concat_tables([table, completed.select(table.column_names)])
    if table.num_rows == 0:
        return empty
    order = pc.sort_indices(table, [("investigation_complete_time", "ascending")])
    table = table.take(order)  # the latest verdict on a transaction is its last row
    return pa.table({
        "transaction_id": table["transaction_id"], "is_fraud": table["is_fraud"],
        "fraud_type": table["fraud_type"],
        "labelled_at": _naive(table["investigation_complete_time"]),
    })  # fmt: skip


def prediction_rows(lake, dates: list[str]) -> pa.Table | None:
    predictions = _read(lake, PREDICTIONS.path, dates)
    if predictions is None:
        return None
    return pa.table({
        "prediction_id": predictions["prediction_id"],
        "transaction_id": predictions["transaction_id"],
        "date_id": _date_ids(predictions["timestamp"]),
        "predicted_at": _naive(predictions["timestamp"]),
        "fraud_probability": predictions["fraud_probability"],
        "decision": predictions["decision"], "model_version": predictions["model_version"],
        "prediction_latency_ms": predictions["prediction_latency_ms"],
    }).select(MODEL_PREDICTIONS_FACT.column_names)  # fmt: skip


def _exists(lake, path: str) -> bool:
    filesystem, base = lake.filesystem()
    return filesystem.get_file_info(f"{base}/{path}").type != FileType.NotFound


def _reference(lake, path: str) -> pa.Table | None:
    return dataset(lake, path).to_table() if _exists(lake, path) else None


def user_rows(lake) -> pa.Table | None:
    users = _reference(lake, USERS.path)
    return None if users is None else users.select(USERS_DIMENSION.column_names)


def merchant_rows(lake) -> pa.Table | None:
    merchants = _reference(lake, MERCHANTS.path)
    return None if merchants is None else merchants.select(MERCHANTS_DIMENSION.column_names)


def audit_rows(entries: Iterable[dict]) -> pa.Table | None:
    """Audit log entries as `audit_log` rows (details kept as JSON text)."""
    rows = [
        {
            **{
                k: entry[k]
                for k in ("seq", "actor", "role", "action", "target", "outcome", "previous", "hash")
            },
            "recorded_at": datetime.fromisoformat(entry["at"]).replace(tzinfo=None),
            "details": json.dumps(entry["details"], sort_keys=True),
        }
        for entry in entries
    ]
    return pa.Table.from_pylist(rows).select(AUDIT_LOG.column_names) if rows else None


def audit_head(connection) -> tuple[int, str] | None:
    """The newest audit entry the warehouse holds (seq, hash): the log's second anchor, kept
    in another store with other permissions, so a log cut past it is found (audit.verify)."""
    cursor = connection.cursor()
    cursor.execute(f"SELECT seq, hash FROM {AUDIT_LOG.name} ORDER BY seq DESC LIMIT 1")
    row = cursor.fetchone()
    return None if row is None else (int(row[0]), str(row[1]))
