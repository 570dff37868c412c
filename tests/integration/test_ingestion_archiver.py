"""The lake archive: every committed message lands once, across crashes and reruns."""

import json
import time

import pyarrow.dataset as ds
import pytest

from fraud_platform.contracts import DEAD_LETTER, FRAUD_LABEL, TRANSACTION
from fraud_platform.ingestion.archiver import ROUTES, Archiver
from fraud_platform.lake import (
    LABELS,
    QUARANTINE,
    RAW_TRANSACTIONS,
    RAW_TRANSACTIONS_SCHEMA,
    dead_letter_table,
)
from fraud_platform.quality import loaders
from fraud_platform.resources import LakeResource

from .ingestion_support import transaction

pytestmark = pytest.mark.integration
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def lake_rows(lake: LakeResource, table) -> "object":
    filesystem, base = lake.filesystem()
    return ds.dataset(
        f"{base}/{table.path}", filesystem=filesystem, format="parquet", partitioning="hive"
    ).to_table()


def archive(settings, topics, lake, topic="transactions-raw", **kw) -> Archiver:
    archiver = Archiver(ROUTES[topic], settings.kafka_bootstrap, lake, topics.prefix, **kw)
    archiver.run(idle_exit_s=3)
    return archiver


def test_raw_transactions_land_in_hourly_partitions_once(settings, topics, tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    base = int(time.time() * 1000) // HOUR_MS * HOUR_MS - 3 * HOUR_MS + HOUR_MS // 2
    records = [transaction(i, base + (i % 3) * HOUR_MS, topics.prefix) for i in range(3000)]
    topics.produce("transactions-raw", [(b"k", TRANSACTION.encode(r)) for r in records])

    archive(settings, topics, lake, flush_rows=700)
    table = lake_rows(lake, RAW_TRANSACTIONS)
    assert table.num_rows == 3000
    assert len(set(table["transaction_id"].to_pylist())) == 3000
    hours = {p.name for p in (tmp_path / "lake" / "raw" / "transactions").glob("date=*/hour=*")}
    assert len(hours) == 3
    assert set(RAW_TRANSACTIONS_SCHEMA.names) <= set(table.column_names)
    first = table.filter(ds.field("transaction_id") == records[7]["transaction_id"]).to_pylist()[0]
    assert first["amount"] == records[7]["amount"]
    assert first["lat"] == 48.85

    # Running again over the same topic is idempotent: the lake's state resumes at the end.
    again = archive(settings, topics, lake)
    assert again.rows_written == 0
    assert lake_rows(lake, RAW_TRANSACTIONS).num_rows == 3000


def test_an_unfinished_flush_is_rolled_back_and_redone(settings, topics, tmp_path):
    """A crash between writing the files and the state leaves an intent; the next start
    deletes those files and re-archives from the last recorded offset."""
    lake = LakeResource(root=str(tmp_path / "lake"))
    now = int(time.time() * 1000)
    records = [transaction(i, now, topics.prefix) for i in range(100)]
    topics.produce("transactions-raw", [(b"k", TRANSACTION.encode(r)) for r in records])
    archive(settings, topics, lake)

    state_dir = tmp_path / "lake" / "_state" / "archiver" / topics.name("transactions-raw")
    partitions = sorted(state_dir.glob("p*.json"))
    assert partitions
    victim = partitions[0]
    # Pretend the last flush of this partition died after its files, before its state.
    files = [str(p) for p in (tmp_path / "lake" / "raw").rglob(f"part-{victim.stem}-*.parquet")]
    victim.unlink()
    (state_dir / f"{victim.stem}.pending.json").write_text(json.dumps({"files": files}))

    archive(settings, topics, lake)
    table = lake_rows(lake, RAW_TRANSACTIONS)
    assert sorted(table["transaction_id"].to_pylist()) == sorted(
        r["transaction_id"] for r in records
    )
    assert not list(state_dir.glob("*.pending.json"))


def test_labels_are_partitioned_by_investigation_completion_date(settings, topics, tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    day = 86_400_000
    now = int(time.time() * 1000)
    labels = [
        {
            "transaction_id": f"txn_{i}",
            "is_fraud": i % 2 == 0,
            "transaction_time": now - 10 * day,
            "investigation_complete_time": now - (i % 2) * day,
            "fraud_type": "card_testing" if i % 2 == 0 else None,
            "confidence": "high",
        }
        for i in range(10)
    ]
    topics.produce("fraud-labels", [(b"k", FRAUD_LABEL.encode(label)) for label in labels])
    archive(settings, topics, lake, topic="fraud-labels")
    table = lake_rows(lake, LABELS)
    assert table.num_rows == 10
    dates = {p.name for p in (tmp_path / "lake" / "labels" / "fraud_investigations").glob("date=*")}
    assert len(dates) == 2


def test_undecodable_messages_are_quarantined_not_lost(settings, topics, tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    now = int(time.time() * 1000)
    good = [TRANSACTION.encode(transaction(i, now, topics.prefix)) for i in range(20)]
    no_time = TRANSACTION.encode(transaction(99, now, topics.prefix, timestamp=None))
    values = [*good[:10], b"written around the validator", no_time, *good[10:]]
    topics.produce("transactions-raw", [(b"k", v) for v in values])

    archiver = archive(settings, topics, lake)
    assert archiver.rows_written == len(values)
    assert lake_rows(lake, RAW_TRANSACTIONS).num_rows == 20
    kept = lake_rows(lake, QUARANTINE)
    assert sorted(kept["original_value"].to_pylist()) == sorted([values[10], no_time])
    assert any("magic byte" in r for r in kept["reason"].to_pylist())


def test_rebuilding_a_date_from_kafka_is_idempotent(settings, topics, tmp_path):
    from datetime import UTC, datetime

    from fraud_platform.ingestion.rearchive import REBUILT, rebuild_date

    lake = LakeResource(root=str(tmp_path / "lake"))
    base = int(time.time() * 1000) // HOUR_MS * HOUR_MS - 2 * HOUR_MS + HOUR_MS // 2
    if (base + HOUR_MS) // DAY_MS != base // DAY_MS:  # both hours on the one date rebuilt
        base -= HOUR_MS
    records = [transaction(i, base + (i % 2) * HOUR_MS, topics.prefix) for i in range(1200)]
    for chunk in range(0, 1200, 400):  # several archiver runs: several files per hour
        batch = records[chunk : chunk + 400]
        topics.produce(
            "transactions-raw", [(r["user_id"].encode(), TRANSACTION.encode(r)) for r in batch]
        )
        archive(settings, topics, lake)
    day = datetime.fromtimestamp(base / 1000, tz=UTC).date()
    date_dir = tmp_path / "lake" / "raw" / "transactions" / f"date={day}"
    before = sorted(lake_rows(lake, RAW_TRANSACTIONS)["transaction_id"].to_pylist())
    assert len(list(date_dir.rglob("part-p*.parquet"))) > 2
    # Damage the partition: lose one of its files.
    next(date_dir.rglob("part-p*.parquet")).unlink()

    route = ROUTES["transactions-raw"]
    rows = rebuild_date(route, settings.kafka_bootstrap, lake, day, topics.prefix)
    files = sorted(p.relative_to(date_dir) for p in date_dir.rglob("*.parquet"))
    assert all(f.name == REBUILT for f in files)
    after = lake_rows(lake, RAW_TRANSACTIONS)
    assert sorted(after["transaction_id"].to_pylist()) == before
    assert rows == len(before)

    first = {f: (date_dir / f).read_bytes() for f in files}
    assert rebuild_date(route, settings.kafka_bootstrap, lake, day, topics.prefix) == rows
    assert {f: (date_dir / f).read_bytes() for f in files} == first


def test_dead_letters_are_archived_with_their_reason_and_origin(settings, topics, tmp_path):
    """Dead letters are stored in the lake too (they outlive Kafka's retention) and feed
    layer 1's dead-letter rate."""
    lake = LakeResource(root=str(tmp_path / "lake"))
    now = int(time.time() * 1000)
    envelopes = [
        {
            "original_key": b"user_1",
            "original_value": b"\x00not avro",
            "reason": "schema_invalid",
            "detail": f"message {i}: not a registered Avro payload",
            "source_topic": topics.name("transactions-ingest"),
            "source_partition": i % 3,
            "source_offset": 100 + i,
            "source_timestamp": now - 5,
            "rejected_at": now,
            "transaction_id": None,
        }
        for i in range(25)
    ]
    topics.produce("dlq-schema-errors", [(b"k", DEAD_LETTER.encode(e)) for e in envelopes])

    archive(settings, topics, lake, topic="dlq-schema-errors")
    table = lake_rows(lake, dead_letter_table("dlq-schema-errors")).sort_by("ingest_offset")
    assert table.num_rows == 25
    first = table.to_pylist()[0]
    assert first["reason"] == "schema_invalid" and first["original_value"] == b"\x00not avro"
    assert (first["ingest_partition"], first["ingest_offset"]) == (0, 100)
    assert first["ingest_topic"] == topics.name("transactions-ingest")
    day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    assert loaders.raw_transactions({"lake": lake}, day).parameters == {"dead_letters": 25}
