"""The PAN scanner: every store the platform writes, searched for anything that looks like a
card number (`pci.find_pans`: 13-19 digits passing the Luhn check).

- Kafka: every message still retained in the catalog's topics, keys and values (Avro writes
  strings as plain UTF-8, so a PAN inside a record shows as its digits);
- the lake: every Parquet file's text and binary columns, and every text file;
- Redis: every key's name and value (strings and hashes);
- the warehouse: every text column of every table.

A finding names the store, where, and the masked number (last 4 digits): the scanner's own
report must not be the place a PAN leaks to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraud_platform.governance.pci import find_pans
from fraud_platform.lake import TEXT_SUFFIXES, lake_files, untracked
from fraud_platform.topics import ALL_TOPICS, topic_name

PREFILTER = r"\d" + r"[ -]?\d" * 12  # 13 digits, maybe grouped


@dataclass(frozen=True)
class Finding:
    store: str
    where: str
    masked: str  # ****1234


def _findings(store: str, where: str, text: str) -> list[Finding]:
    return [Finding(store, where, f"****{pan[-4:]}") for pan in find_pans(text)]


def _text(value: bytes) -> str:
    return value.decode("latin-1")  # every byte maps to a character: digits stay digits


def scan_kafka(
    bootstrap: str, prefix: str = "", timeout: float = 10.0, quiet: float = 1.0
) -> list[Finding]:
    """Each catalog topic from its first retained message to its current end."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "pan-scanner",
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",  # aborted writes are stored too
        }
    )
    found: list[Finding] = []
    try:
        for topic in (topic_name(t.name, prefix) for t in ALL_TOPICS):
            metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
            if metadata is None or metadata.error is not None:
                continue
            for partition in metadata.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                           timeout=timeout)  # fmt: skip
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, partition, low)])
                found += _scan_partition(consumer, f"{topic}[{partition}]", high, quiet)
    finally:
        consumer.close()
    return found


def _scan_partition(consumer, name: str, high: int, quiet: float) -> list[Finding]:
    """The assigned partition up to `high`; `quiet` seconds with nothing end it early, as the last
    offsets of a transactional topic are commit markers no consumer is ever given."""
    found: list[Finding] = []
    position = -1
    while position < high - 1:
        batch = consumer.consume(1000, timeout=quiet)
        if not batch:
            break
        for message in batch:
            if message.error() is None:
                position = message.offset()
                for part in (message.key(), message.value()):
                    if part:
                        found += _findings("kafka", f"{name}@{position}", _text(part))
    return found


def _suspects(column: pa.ChunkedArray) -> Iterator[str]:
    """The values of a text or binary column with a run of 13+ digits (the rest cannot hold
    a card number), found by Arrow before any Python sees them."""
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        for value in column.to_pylist():
            if value:
                yield _text(value)
        return
    matches = pc.fill_null(pc.match_substring_regex(column, PREFILTER), False)
    yield from (v for v in pc.filter(column, matches).to_pylist() if v)


def scan_lake(lake, track=untracked) -> list[Finding]:
    filesystem, _ = lake.filesystem()
    found: list[Finding] = []
    for path, where in track(lake_files(lake), "lake files"):
        if path.endswith(".parquet"):
            table = pq.read_table(path, filesystem=filesystem)
            for name in table.column_names:
                column = table[name]
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or \
                        pa.types.is_binary(column.type):  # fmt: skip
                    for value in _suspects(column):
                        found += _findings("lake", f"{where}:{name}", value)
        elif path.endswith(TEXT_SUFFIXES):
            with filesystem.open_input_stream(path) as f:
                found += _findings("lake", where, _text(f.read()))
    return found


def scan_redis(client) -> list[Finding]:
    found: list[Finding] = []
    for key in client.scan_iter(count=1000):
        name = _text(key)
        found += _findings("redis", f"key {name}", name)
        kind = client.type(key)
        if kind == b"hash":
            values: Iterable[bytes] = [b for pair in client.hgetall(key).items() for b in pair]
        elif kind == b"string":
            values = [client.get(key) or b""]
        else:
            values = []
        for value in values:
            found += _findings("redis", name, _text(value))
    return found


def scan_warehouse(warehouse) -> list[Finding]:
    from fraud_platform.warehouse.schema import TABLES

    found: list[Finding] = []
    with warehouse.connect() as connection:
        cursor = connection.cursor()
        for table in TABLES:
            text = [name for name, sql_type in table.columns if sql_type == "VARCHAR"]
            try:
                cursor.execute(f"SELECT {', '.join(text)} FROM {table.name}")
            except Exception:
                continue
            while rows := cursor.fetchmany(10_000):
                for row in rows:
                    for name, value in zip(text, row, strict=True):
                        if value and any(c.isdigit() for c in value):
                            found += _findings("warehouse", f"{table.name}.{name}", value)
    return found
