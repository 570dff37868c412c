"""Conservation under SIGKILL, rebalances and fencing: validator and archiver killed mid-stream,
members joining and leaving, and a static member fenced by its own id."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pyarrow.dataset as ds
import pytest
from confluent_kafka import Consumer

from fraud_platform.contracts import TRANSACTION
from fraud_platform.ingestion.archiver import ROUTES, Archiver
from fraud_platform.ingestion.validator import Validator, ValidatorConfig
from fraud_platform.resources import LakeResource

from .ingestion_support import bad_inputs, transaction

pytestmark = pytest.mark.integration


def start(args: list[str], env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fraud_platform.cli", "ingest", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_nothing_lost_or_doubled_when_killed_mid_stream(settings, topics, tmp_path):
    env = {
        **os.environ,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_VALIDATOR_METRICS_PORT": "0",
        "FRAUD_LAKE_ROOT": str(tmp_path / "lake"),
        "FRAUD_ARCHIVER_FLUSH_ROWS": "1500",
        "FRAUD_ARCHIVER_FLUSH_SECONDS": "0.5",
        "FRAUD_VALIDATOR_BATCH": "500",
    }
    now = int(time.time() * 1000)
    good = [TRANSACTION.encode(transaction(i, now, topics.prefix)) for i in range(20_000)]
    bad = bad_inputs(now, topics.prefix)
    sent = [(b"k", v) for v in good] + [(b"k", b.value) for b in bad]
    random.Random(7).shuffle(sent)
    # The duplicate must come after its original to be the one dropped: move it last.
    duplicate = next(b.value for b in bad if b.kind == "duplicate")
    sent.remove((b"k", duplicate))
    sent.append((b"k", duplicate))

    def produce_slowly() -> None:
        for i in range(0, len(sent), 2000):
            topics.produce("transactions-ingest", sent[i : i + 2000])
            time.sleep(0.4)

    with open(tmp_path / "services.log", "ab") as log:
        validator = start(["validate"], env, log)
        archiver = start(["archive", "transactions-raw"], env, log)
        producer = threading.Thread(target=produce_slowly)
        producer.start()
        kills = 0
        try:
            rng = random.Random(42)
            for _ in range(3):
                time.sleep(rng.uniform(1.5, 3.0))
                validator.send_signal(signal.SIGKILL)
                validator.wait()
                validator = start(["validate"], env, log)
                time.sleep(rng.uniform(0.5, 1.5))
                archiver.send_signal(signal.SIGKILL)
                archiver.wait()
                archiver = start(["archive", "transactions-raw"], env, log)
                kills += 2
            producer.join()

            lake = tmp_path / "lake" / "raw" / "transactions"
            deadline = time.monotonic() + 120
            rows = 0
            while time.monotonic() < deadline:
                try:
                    rows = ds.dataset(lake, format="parquet", partitioning="hive").count_rows()
                except (FileNotFoundError, OSError):
                    rows = 0  # not there yet, or a rollback removed a file mid-listing
                if rows >= len(good):
                    break
                time.sleep(1)
        finally:
            for process in (validator, archiver):
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    assert kills == 6

    raw, dead_messages = topics.outputs()
    dead = {name: len(messages) for name, messages in dead_messages.items()}
    assert len(raw) + sum(dead.values()) == len(sent)
    assert sorted(m.value() for m in raw) == sorted(good)
    expected_dead = {}
    for b in bad:
        expected_dead[b.dlq] = expected_dead.get(b.dlq, 0) + 1
    assert {k: v for k, v in dead.items() if v} == expected_dead

    table = ds.dataset(lake, format="parquet", partitioning="hive").to_table()
    ids = table["transaction_id"].to_pylist()
    assert len(ids) == len(good)
    assert len(set(ids)) == len(ids)


def test_members_joining_and_leaving_mid_stream_neither_lose_nor_double(settings, topics, tmp_path):
    """Each rebalance revokes partitions while a batch is staged: it must be committed by its
    owner before the partitions move, and the new owner must start after it."""
    env = {
        **os.environ,
        "FRAUD_TOPIC_PREFIX": topics.prefix,
        "FRAUD_VALIDATOR_METRICS_PORT": "0",
        "FRAUD_VALIDATOR_BATCH": "700",
    }
    now = int(time.time() * 1000)
    good = [TRANSACTION.encode(transaction(i, now, topics.prefix)) for i in range(30_000)]
    feeder = threading.Thread(
        target=lambda: [
            (
                topics.produce("transactions-ingest", [(b"k", v) for v in good[i : i + 1500]]),
                time.sleep(0.3),
            )
            for i in range(0, len(good), 1500)
        ]
    )
    with open(tmp_path / "validators.log", "ab") as log:
        first = start(["validate"], {**env, "FRAUD_VALIDATOR_INSTANCE": "a"}, log)
        feeder.start()
        time.sleep(2.0)
        second = start(["validate"], {**env, "FRAUD_VALIDATOR_INSTANCE": "b"}, log)
        time.sleep(2.0)
        first.send_signal(signal.SIGTERM)  # leaves the group: its partitions move to `second`
        assert first.wait(30) == 0
        third = start(["validate"], {**env, "FRAUD_VALIDATOR_INSTANCE": "c"}, log)
        feeder.join()
        try:
            # `first` was a static member: its partitions move after its session times out.
            deadline = time.monotonic() + 90
            raw, dead = topics.outputs()
            while len(raw) < len(good) and time.monotonic() < deadline:
                raw, dead = topics.outputs()
        finally:
            for process in (second, third):
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    ids = [TRANSACTION.decode(m.value())["transaction_id"] for m in raw]
    assert sum(len(v) for v in dead.values()) == 0
    assert len(set(ids)) == len(good)
    assert len(ids) == len(good), f"{len(ids) - len(set(ids))} written twice"


def intrude(bootstrap: str, group: str, instance: str, topic: str) -> None:
    """Join `group` as `instance`, as a second copy of a static member would, until the broker
    hands it the partitions: the member running under that id is fenced (a fatal error, the
    same one librdkafka raises on a member rejoining after its session timed out)."""
    intruder = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": instance,
         "enable.auto.commit": False, "session.timeout.ms": 10_000}
    )  # fmt: skip
    intruder.subscribe([topic])
    deadline = time.monotonic() + 30
    while not intruder.assignment():
        assert time.monotonic() < deadline, "the intruder never took the partitions"
        intruder.poll(0.2)
    intruder.close()


def feed(topics, catalog_name: str, values: list[bytes], chunk: int = 1000) -> threading.Thread:
    """Produce `values` in chunks a few tenths of a second apart, on a thread."""

    def run() -> None:
        for i in range(0, len(values), chunk):
            topics.produce(catalog_name, [(b"k", v) for v in values[i : i + chunk]])
            time.sleep(0.3)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_fenced_validator_replaces_its_clients_and_neither_loses_nor_doubles(
    settings, topics, caplog
):
    config = ValidatorConfig(
        bootstrap=settings.kafka_bootstrap, redis_url=settings.redis_url,
        topic_prefix=topics.prefix, group_id=f"{topics.prefix}validator",
        transactional_id=f"{topics.prefix}validator", batch_size=500,
    )  # fmt: skip
    now = int(time.time() * 1000)
    good = [TRANSACTION.encode(transaction(i, now, topics.prefix)) for i in range(12_000)]
    validator = Validator(config)
    worker = threading.Thread(target=validator.run, daemon=True)
    worker.start()
    feeder = feed(topics, "transactions-ingest", good)
    try:
        time.sleep(2)
        fenced = validator.fatal
        intrude(settings.kafka_bootstrap, config.group_id, config.instance,
                topics.name("transactions-ingest"))  # fmt: skip
        feeder.join()
        deadline = time.monotonic() + 90
        done = lambda: validator.metrics.totals().get("transactions-raw", 0) >= len(good)  # noqa: E731
        while not done() or validator.fatal is fenced:
            assert time.monotonic() < deadline, validator.metrics.totals()
            time.sleep(0.5)
        assert worker.is_alive()  # the same validator carried on
    finally:
        validator.stop()
        worker.join(30)
    assert fenced.error is not None and "fenced" in fenced.error.str()
    assert validator.fatal is not fenced and validator.fatal.error is None
    assert "replacing the Kafka clients" in caplog.text
    raw, dead = topics.outputs()
    assert sorted(m.value() for m in raw) == sorted(good)
    assert not any(dead.values())


def test_a_fenced_archiver_replaces_its_consumer_and_lands_every_row_once(
    settings, topics, tmp_path, caplog
):
    lake = LakeResource(root=str(tmp_path / "lake"))
    now = int(time.time() * 1000)
    records = [transaction(i, now, topics.prefix) for i in range(12_000)]
    route = ROUTES["transactions-raw"]
    archiver = Archiver(route, settings.kafka_bootstrap, lake, topics.prefix, flush_seconds=0.5)
    worker = threading.Thread(target=archiver.run, daemon=True)
    worker.start()
    feeder = feed(topics, "transactions-raw", [TRANSACTION.encode(r) for r in records])
    try:
        time.sleep(2)
        fenced = archiver.fatal
        group = f"lake-archiver-{archiver.topic}"
        intrude(settings.kafka_bootstrap, group, group, archiver.topic)
        feeder.join()
        deadline = time.monotonic() + 90
        while archiver.rows_written < len(records) or archiver.fatal is fenced:
            assert time.monotonic() < deadline, (archiver.rows_written, fenced.error)
            time.sleep(0.5)
        assert worker.is_alive()
    finally:
        archiver.stop()
        worker.join(30)
    assert fenced.error is not None and archiver.fatal is not fenced
    assert "after a fatal error" in caplog.text
    raw = ds.dataset(tmp_path / "lake" / "raw" / "transactions", partitioning="hive")
    ids = raw.to_table(columns=["transaction_id"]).column(0).to_pylist()
    assert sorted(ids) == sorted(r["transaction_id"] for r in records)
