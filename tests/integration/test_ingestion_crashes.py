"""Conservation under SIGKILL: validator and archiver killed mid-stream, several times."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pyarrow.dataset as ds
import pytest

from fraud_platform.contracts import TRANSACTION

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
