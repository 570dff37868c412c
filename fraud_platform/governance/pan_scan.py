"""The PAN scanner: every store the platform writes, searched for anything that looks like a
card number (`fraud_kernel.pan_spans`, the one definition `pci` uses too).

- Kafka: every message still retained in the catalog's topics, keys and values (Avro writes
  strings as plain UTF-8, so a PAN inside a record shows as its digits);
- the lake: every Parquet file's text and binary columns, and every other file's bytes
  (reports, metadata, Redis snapshots and warehouse exports among the backups);
- Redis: every key's name and value in every database;
- the warehouse: every text column of every table;
- files: the bytes of what the services keep on disk: Redis's snapshot and append-only file,
  Flink's checkpoints and savepoints (written uncompressed for this), the warehouse file and
  the logs.

A finding names the store, where, and the masked number (last 4 digits): the scanner's own
report must not be the place a PAN leaks to, so `where` is masked too (a Redis key can be
`merchant:4111...`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis
from fraud_kernel import pan_spans

from fraud_platform.config import Settings
from fraud_platform.governance.pci import mask_text
from fraud_platform.lake import lake_files, untracked
from fraud_platform.topics import ALL_TOPICS, topic_name

PREFILTER = r"\d" + r"[ -]?\d" * 12  # 13 digits, maybe grouped
CHUNK = 8 << 20  # files are read in pieces this large, overlapping by a card's length
OVERLAP = 64


@dataclass(frozen=True)
class Finding:
    store: str
    where: str
    masked: str  # ****1234


def _finding(store: str, where: str, printed: bytes) -> Finding:
    digits = re.sub(rb"\D", b"", printed).decode()
    return Finding(store, mask_text(where), f"****{digits[-4:]}")


def _findings(store: str, where: str, data: str | bytes) -> list[Finding]:
    raw = data if isinstance(data, bytes) else data.encode()
    return [_finding(store, where, raw[start:end]) for start, end in pan_spans(raw)]


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
                        found += _findings("kafka", f"{name}@{position}", part)
    return found


def _suspects(column: pa.ChunkedArray) -> Iterator[str | bytes]:
    """The values of a text or binary column with a run of 13+ digits (the rest cannot hold
    a card number), found by Arrow before any Python sees them."""
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        yield from (v for v in column.to_pylist() if v)
        return
    matches = pc.fill_null(pc.match_substring_regex(column, PREFILTER), False)
    yield from (v for v in pc.filter(column, matches).to_pylist() if v)


def _text_column(column: pa.ChunkedArray) -> bool:
    kind = column.type
    return any(test(kind) for test in (pa.types.is_string, pa.types.is_large_string,
                                       pa.types.is_binary, pa.types.is_large_binary))  # fmt: skip


def scan_lake(lake, track=untracked) -> list[Finding]:
    """Parquet files column by column (their pages are compressed), every other file's bytes."""
    filesystem, _ = lake.filesystem()
    found: list[Finding] = []
    for path, where in track(lake_files(lake), "lake files"):
        if path.endswith(".parquet"):
            table = pq.read_table(path, filesystem=filesystem)
            for name in table.column_names:
                if _text_column(table[name]):
                    for value in _suspects(table[name]):
                        found += _findings("lake", f"{where}:{name}", value)
        else:
            with filesystem.open_input_stream(path) as f:
                found += _scan_stream("lake", where, f)
    return found


def _scan_stream(store: str, where: str, stream) -> list[Finding]:
    """A file's bytes piece by piece, each finding named by its byte offset. Each piece is
    searched with the end of the one before, so a number across two pieces is found; one that
    ended inside that end was found with the piece before and is not counted again."""
    found: list[Finding] = []
    tail, offset = b"", 0
    while piece := stream.read(CHUNK):
        data, base = tail + piece, offset - len(tail)
        for start, end in pan_spans(data):
            if end > len(tail):
                found.append(_finding(store, f"{where}@{base + start}", data[start:end]))
        tail, offset = data[-OVERLAP:], offset + len(piece)
    return found


def service_files(settings: Settings) -> list[Path]:
    """The files the services keep on disk that can hold transaction data."""
    home = settings.home
    roots = [home / "redis" / "data", home / "flink" / "checkpoints",
             home / "flink" / "savepoints", Path(settings.duckdb_path).parent,
             home / "logs"]  # fmt: skip
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file())


def scan_files(settings: Settings, track=untracked) -> list[Finding]:
    found: list[Finding] = []
    for path in track(service_files(settings), "service files"):
        where = (
            str(path.relative_to(settings.home))
            if path.is_relative_to(settings.home)
            else str(path)
        )
        try:
            with path.open("rb") as stream:
                found += _scan_stream("files", where, stream)
        except OSError:  # a file the service removed meanwhile (a rotated log, a checkpoint)
            continue
    return found


def _databases(client) -> list:
    """A client per Redis database that holds keys (`INFO keyspace`), the given one first."""
    own = client.connection_pool.connection_kwargs.get("db", 0)
    others = [int(name[2:]) for name in client.info("keyspace") if int(name[2:]) != own]
    return [client, *(on_database(client, db) for db in sorted(others))]


def on_database(client: redis.Redis, db: int) -> redis.Redis:
    """A client on another database of the same server; the pool's kwargs are the connection's,
    not the client's (`Redis(**kwargs)` refuses some), so they go to a new pool."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs | {"db": db}
    return redis.Redis(connection_pool=redis.ConnectionPool(pool.connection_class, **kwargs))


def _redis_values(client, key: bytes) -> Iterable[bytes]:
    kind = client.type(key)
    if kind == b"hash":
        return [b for pair in client.hgetall(key).items() for b in pair]
    if kind == b"string":
        return [client.get(key) or b""]
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"set":
        return client.smembers(key)
    if kind == b"zset":
        return client.zrange(key, 0, -1)
    return []


def scan_redis(client) -> list[Finding]:
    """Every key's name and value, in every database the server holds keys in."""
    found: list[Finding] = []
    for db in _databases(client):
        label = db.connection_pool.connection_kwargs.get("db", 0)
        for key in db.scan_iter(count=1000):
            name = key.decode("utf-8", "replace")
            found += _findings("redis", f"db{label} key {name}", key)
            for value in _redis_values(db, key):
                found += _findings("redis", f"db{label} {name}", value)
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
