"""Rebuilding the online windows a Redis restore left behind.

A snapshot holds each entity's windows as of its latest event before the snapshot was taken.
Entities with events since (the gap) get them from the aggregates job only at their next
event, so until then they would be served stale. This recomputes them from the lake's raw
transactions, with the job's own code (fraud_streaming.features.OnlineWrites) over the same
30-day history, and writes them with the job's WRITE_IF_NEWER script: a hash the running job
wrote as of a later instant is kept. Late events the job sent to transactions-late are in the
lake and so are counted here; the job's next write for the entity replaces them anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from fraud_platform.batch.processing import date_range
from fraud_platform.config import Settings
from fraud_platform.governance import audit
from fraud_platform.lake import (
    RAW_TRANSACTIONS,
    TIMESTAMP,
    dataset,
    existing_dates,
    transaction_record,
)
from fraud_platform.streaming.jobs import AGGREGATES, Deployment, job_spec

ENTITIES = {"user": "user_id", "merchant": "merchant_id"}


@dataclass(frozen=True)
class AggregateRebuild:
    """What a rebuild did: entities with events since `since_ms`, hashes written, hashes
    kept because Redis held them as of a later instant."""

    since_ms: int
    transactions_read: int
    entities: dict[str, int]
    written: int
    kept: int


def _days(start_ms: int, end_ms: int) -> list[str]:
    """The UTC dates from `start_ms`'s to `end_ms`'s, both included."""
    day = lambda ms: datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()  # noqa: E731
    return date_range(day(start_ms), day(end_ms))


def _raw_rows(lake, days: list[str], keep: Any = None) -> list[dict[str, Any]]:
    """The raw transactions of `days` (those the lake has), filtered by `keep`."""
    path = RAW_TRANSACTIONS.path
    rows: list[dict[str, Any]] = []
    for day in existing_dates(lake, path, days):
        rows += dataset(lake, f"{path}/date={day}").to_table(filter=keep).to_pylist()
    return rows


def affected_entities(lake, since_ms: int, now_ms: int) -> dict[str, set[str]]:
    """The users and merchants with a transaction at or after `since_ms` in the lake."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    since = ds.field("timestamp") >= pa.scalar(since_ms, TIMESTAMP)
    recent = _raw_rows(lake, _days(since_ms, now_ms), since)
    return {entity: {row[column] for row in recent} for entity, column in ENTITIES.items()}


def rebuild_aggregates(
    client: redis.Redis,
    lake,
    since_ms: int,
    settings: Settings | None = None,
    key_prefix: str = "",
    now_ms: int | None = None,
    progress: Callable[[int, int], None] = lambda *_: None,
) -> AggregateRebuild:
    """Recompute and write the windows of every entity with events since `since_ms` (the
    restored snapshot's time); `progress(done, total)` after each entity kind."""
    import pyarrow.dataset as ds
    from fraud_streaming.features import WRITE_IF_NEWER, History, OnlineWrites
    from fraud_streaming.records import Reference

    settings = settings or Settings.from_env()
    now_ms = now_ms or int(datetime.now(UTC).timestamp() * 1000)
    deployment = Deployment(key_prefix=key_prefix, lake_root=lake.root)
    spec = job_spec(settings, AGGREGATES, deployment)
    writers = {entity: OnlineWrites(spec, entity) for entity in ENTITIES}
    horizon = max(w.windows.horizon_ms for w in writers.values())
    affected = affected_entities(lake, since_ms, now_ms)
    wanted = ds.field("user_id").isin(list(affected["user"])) | ds.field("merchant_id").isin(
        list(affected["merchant"])
    )
    rows = _raw_rows(lake, _days(since_ms - horizon, now_ms), wanted) if affected["user"] else []
    reference = Reference(spec["reference"])
    processed = sorted(
        (reference.processed(transaction_record(row)) for row in rows),
        key=lambda row: (row["ts_ms"], row["transaction_id"]),
    )
    script = client.register_script(WRITE_IF_NEWER)
    written = kept = 0
    for done, (entity, column) in enumerate(ENTITIES.items(), start=1):
        online = writers[entity]
        histories: dict[str, History] = defaultdict(History)
        for row in processed:
            if row[column] in affected[entity]:
                histories[row[column]].record(dict(row), online.windows, online.windows.horizon_ms)
        pipe = client.pipeline(transaction=False)
        for entity_id, history in histories.items():
            for key, args in online(entity_id, history):
                script(keys=[key], args=args, client=pipe)
        for answer in pipe.execute():
            written, kept = written + answer, kept + (1 - answer)
        progress(done, len(ENTITIES))
    result = AggregateRebuild(
        since_ms, len(rows), {e: len(ids) for e, ids in affected.items()}, written, kept
    )
    audit.record("restore.redis_aggregates", f"since {since_ms}", vars(result))
    return result
