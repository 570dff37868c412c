"""The lake's layout and the Arrow schemas of its raw tables, defined once.

Paths follow the design's data-lake layout (`raw/transactions/date=YYYY-MM-DD/hour=HH/`,
`labels/fraud_investigations/date=YYYY-MM-DD/`, ...). The archiver, the simulator's history
mode, the importer and the Dagster assets all write and read through these definitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

TIMESTAMP = pa.timestamp("ms", tz="UTC")

RAW_TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("user_id", pa.string()),
        ("merchant_id", pa.string()),
        ("amount", pa.float64()),
        ("currency", pa.string()),
        ("timestamp", TIMESTAMP),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("country", pa.string()),
        ("device", pa.string()),
        ("device_id", pa.string()),
        ("channel", pa.string()),
        ("card_last4", pa.string()),
        ("card_token", pa.string()),  # keyed HMAC of the card number (transaction v2)
        ("declined", pa.bool_()),
        ("source_partition", pa.int32()),  # Kafka position, null when written by a batch import
        ("source_offset", pa.int64()),
    ]
)

LABELS_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("is_fraud", pa.bool_()),
        ("transaction_time", TIMESTAMP),
        ("investigation_complete_time", TIMESTAMP),
        ("fraud_type", pa.string()),
        ("confidence", pa.string()),
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
    ]
)

PREDICTIONS_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("transaction_id", pa.string()),
        ("fraud_probability", pa.float64()),
        ("decision", pa.string()),
        ("model_version", pa.string()),
        ("features_used", pa.string()),  # JSON object
        ("prediction_latency_ms", pa.float64()),
        ("timestamp", TIMESTAMP),
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
        ("original_key", pa.binary()),
        ("original_value", pa.binary()),
        ("reason", pa.string()),
    ]
)

# A dead-lettered message as the archiver keeps it: the validator's envelope, with the
# position of the original in the ingest topic as ingest_* (source_* is the DLQ position).
DEAD_LETTERS_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("ingest_topic", pa.string()),
        ("ingest_partition", pa.int32()),
        ("ingest_offset", pa.int64()),
        ("ingest_timestamp", TIMESTAMP),
        ("rejected_at", TIMESTAMP),
        ("original_key", pa.binary()),
        ("original_value", pa.binary()),
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
    ]
)

USERS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("home_lat", pa.float64()),
        ("home_lon", pa.float64()),
        ("home_country", pa.string()),
        ("account_type", pa.string()),
        ("kyc_status", pa.string()),
        ("registration_date", pa.date32()),
    ]
)

MERCHANTS_SCHEMA = pa.schema(
    [
        ("merchant_id", pa.string()),
        ("name", pa.string()),
        ("category", pa.string()),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("country", pa.string()),
        ("risk_tier", pa.string()),
    ]
)


@dataclass(frozen=True)
class LakeTable:
    """A lake table: its folder, schema, and the time column that picks its partition."""

    path: str
    schema: pa.Schema
    time_column: str | None
    hourly: bool

    def partition_dir(self, millis: int) -> str:
        moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
        directory = f"{self.path}/date={moment:%Y-%m-%d}"
        return f"{directory}/hour={moment:%H}" if self.hourly else directory


RAW_TRANSACTIONS = LakeTable("raw/transactions", RAW_TRANSACTIONS_SCHEMA, "timestamp", True)
LABELS = LakeTable(
    "labels/fraud_investigations", LABELS_SCHEMA, "investigation_complete_time", False
)
PREDICTIONS = LakeTable("raw/predictions", PREDICTIONS_SCHEMA, "timestamp", True)
QUARANTINE = LakeTable("quarantine", QUARANTINE_SCHEMA, None, False)
USERS = LakeTable("reference/users", USERS_SCHEMA, None, False)
DEAD_LETTERS_PATH = "dead_letters"


def dead_letter_table(topic: str) -> LakeTable:
    """Where the archiver keeps one dead-letter topic, by day of rejection."""
    return LakeTable(f"{DEAD_LETTERS_PATH}/{topic}", DEAD_LETTERS_SCHEMA, "rejected_at", False)


MERCHANTS = LakeTable("reference/merchants", MERCHANTS_SCHEMA, None, False)


def transaction_row(record: dict[str, Any]) -> dict[str, Any]:
    """A Transaction message as a raw-table row (location flattened)."""
    location = record.get("location") or {}
    row = {name: record.get(name) for name in RAW_TRANSACTIONS_SCHEMA.names}
    row["lat"], row["lon"] = location.get("lat"), location.get("lon")
    return row


def _millis(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def transaction_record(row: dict[str, Any]) -> dict[str, Any]:
    """A raw-table row (as from `Table.to_pylist`) as a Transaction message record."""
    record = {
        k: v for k, v in row.items() if k not in ("lat", "lon", "source_partition", "source_offset")
    }
    record["location"] = None if row["lat"] is None else {"lat": row["lat"], "lon": row["lon"]}
    record["timestamp"] = _millis(row["timestamp"])
    return record


def label_record(row: dict[str, Any]) -> dict[str, Any]:
    record = {k: v for k, v in row.items() if k not in ("source_partition", "source_offset")}
    for name in ("transaction_time", "investigation_complete_time"):
        record[name] = _millis(row[name])
    return record


def prediction_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {name: record.get(name) for name in PREDICTIONS_SCHEMA.names}
    row["features_used"] = json.dumps(record.get("features_used") or {}, sort_keys=True)
    return row


def label_row(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in LABELS_SCHEMA.names}


def dead_letter_row(record: dict[str, Any]) -> dict[str, Any]:
    """A DeadLetter envelope as a dead-letter table row."""
    row = {name: record.get(name) for name in DEAD_LETTERS_SCHEMA.names}
    for part in ("topic", "partition", "offset", "timestamp"):
        row[f"ingest_{part}"] = record.get(f"source_{part}")
    return row


def quarantine_row(message: Any, reason: str) -> dict[str, Any]:
    """A Kafka message that could not be archived, kept whole (any card number in it masked)
    with the reason."""
    from fraud_platform.governance.pci import mask_pans_in_bytes

    return {
        "source_partition": message.partition(),
        "source_offset": message.offset(),
        "original_key": mask_pans_in_bytes(message.key()),
        "original_value": mask_pans_in_bytes(message.value()),
        "reason": reason,
    }


def write_atomically(filesystem: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write a whole file so readers see all of it or none (rename locally; S3 PUT is atomic)."""
    parent, name = path.rsplit("/", 1)
    filesystem.create_dir(parent, recursive=True)
    if isinstance(filesystem, pafs.LocalFileSystem):
        temporary = f"{parent}/.{name}.tmp"  # dot-prefixed: dataset readers skip it
        with filesystem.open_output_stream(temporary) as out:
            out.write(data)
        filesystem.move(temporary, path)
    else:
        with filesystem.open_output_stream(path) as out:
            out.write(data)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def read_json(filesystem: pafs.FileSystem, path: str) -> Any | None:
    try:
        with filesystem.open_input_stream(path) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


# Layers written by the Spark batch (Hive partitions by date).
PROCESSED_TRANSACTIONS_PATH = "processed/transactions"
TRANSACTION_FEATURES_PATH = "processed/features"
TRAINING_SETS_PATH = "processed/training_sets"


def dataset(lake, path: str):
    """A folder of the lake (e.g. `raw/transactions/date=D`) as one pyarrow Parquet dataset."""
    import pyarrow.dataset as ds

    filesystem, base = lake.filesystem()
    return ds.dataset(f"{base}/{path}", filesystem=filesystem, format="parquet")


def existing_dates(lake, path: str, dates: list[str]) -> list[str]:
    """The dates among `dates` that have a `date=` folder under `path`."""
    from pyarrow.fs import FileType

    filesystem, base = lake.filesystem()
    infos = filesystem.get_file_info([f"{base}/{path}/date={d}" for d in dates])
    return [d for d, info in zip(dates, infos, strict=True) if info.type == FileType.Directory]


def row_count(lake, path: str, dates: list[str]) -> int:
    """Rows in the `date=` partitions of `path` among `dates`, from the Parquet footers: no
    data is read."""
    present = existing_dates(lake, path, dates)
    return sum(dataset(lake, f"{path}/date={d}").count_rows() for d in present)


USER_PROFILES_PATH = "processed/aggregates/users"
MERCHANT_PROFILES_PATH = "processed/aggregates/merchants"


TEXT_SUFFIXES = (".json", ".jsonl", ".html", ".csv", ".txt", ".log")  # reports, metadata, logs


def untracked(items, what: str):
    """The default `track` of a long walk: no progress shown (the CLI passes rich's)."""
    return items


def lake_files(lake) -> list[tuple[str, str]]:
    """Every file of the lake as (path on its filesystem, path inside the lake); hidden
    files (atomic-write temporaries) left out. What a scan of every layer walks."""
    from pyarrow.fs import FileSelector, FileType

    filesystem, base = lake.filesystem()
    infos = filesystem.get_file_info(FileSelector(base, recursive=True, allow_not_found=True))
    return [
        (info.path, info.path.removeprefix(f"{base}/"))
        for info in infos
        if info.type == FileType.File and not info.base_name.startswith(".")
    ]
