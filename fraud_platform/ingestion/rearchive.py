"""Rebuild one date of an archived table from Kafka: the repair for a damaged partition.

Reads every message that can hold an event of that date (from just before the day starts
until `lateness` after it ends, by Kafka timestamp), keeps the rows whose event time falls on
the date, writes one file per partition folder (`part-rebuilt.parquet`, rows in Kafka order)
and removes the folder's other archive files. Running it again gives the same files: it is
idempotent. The running archiver is unaffected; its own progress is kept separately.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
from pyarrow.fs import FileSelector, FileType

from fraud_platform.ingestion.archiver import ArchiveRoute
from fraud_platform.lake import parquet_bytes, write_atomically
from fraud_platform.messaging import offsets_at, partitions_of, read_range
from fraud_platform.topics import topic_name

REBUILT = "part-rebuilt.parquet"


def rebuild_date(
    route: ArchiveRoute,
    bootstrap: str,
    lake: Any,  # fraud_platform.resources.LakeResource
    day: date,
    topic_prefix: str = "",
    lateness: timedelta = timedelta(days=7),
) -> int:
    """Rebuild `day` of the route's lake table from Kafka; returns the rows written."""
    from confluent_kafka import Consumer

    topic = topic_name(route.topic, topic_prefix)
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    start_ms = int(start.timestamp() * 1000)
    end_ms = int((start + timedelta(days=1)).timestamp() * 1000)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"rearchive-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    partitions = partitions_of(consumer, topic)
    begin = offsets_at(consumer, topic, partitions, start_ms - 5 * 60_000)
    stop = offsets_at(consumer, topic, partitions, end_ms + int(lateness.total_seconds() * 1000))
    table = route.table
    rows_by_dir: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for messages in read_range(consumer, topic, begin, stop):
        for message in messages:
            row = route.to_row(route.contract.decode(message.value()))
            if start_ms <= row[table.time_column] < end_ms:
                row["source_partition"], row["source_offset"] = (
                    message.partition(),
                    message.offset(),
                )
                rows_by_dir[table.partition_dir(row[table.time_column])].append(row)
    consumer.close()
    return _replace_partition_files(lake, table, day, rows_by_dir)


def _replace_partition_files(lake, table, day: date, rows_by_dir) -> int:
    filesystem, base = lake.filesystem()
    written = 0
    for directory, rows in rows_by_dir.items():
        rows.sort(key=lambda r: (r["source_partition"], r["source_offset"]))
        data = pa.Table.from_pylist(rows, schema=table.schema)
        write_atomically(filesystem, f"{base}/{directory}/{REBUILT}", parquet_bytes(data))
        written += len(rows)
    date_dir = f"{base}/{table.path}/date={day:%Y-%m-%d}"
    selector = FileSelector(date_dir, recursive=True, allow_not_found=True)
    kept = {f"{base}/{directory}/{REBUILT}" for directory in rows_by_dir}
    for info in filesystem.get_file_info(selector):
        archived = info.base_name.startswith("part-p") or info.base_name == REBUILT
        if info.type == FileType.File and archived and info.path not in kept:
            filesystem.delete_file(info.path)  # superseded by part-rebuilt.parquet
    return written
