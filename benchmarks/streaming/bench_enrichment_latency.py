"""End-to-end latency raw -> enriched of the enrichment job, against a bare Kafka round trip
at the same rate, in one run.

    uv run python benchmarks/streaming/bench_enrichment_latency.py [--rates 1000 5000]

For each rate, simulated live transactions go onto a fresh transactions-raw (record time =
send time) while a consumer of transactions-enriched notes when each arrives:
  - processing latency: read uncommitted, i.e. as soon as the job has written the record;
  - committed latency: read committed, what a transactional reader sees: the exactly-once
    sink commits with each checkpoint, so this is bounded by the checkpoint interval
    (`--checkpoint`, 1 s here; 60 s by default in the platform).
The floor is a bare confluent-kafka producer -> topic -> consumer at the same rate. Prints
P50/P95/P99 in ms and each ratio to the floor, and the rate the job sustained. Starts Redis,
Kafka and Flink when they are not running and stops what it started.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from datetime import UTC, datetime

import numpy as np
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from fraud_platform.config import Settings
from fraud_platform.contracts import ENRICHED_TRANSACTION, TRANSACTION
from fraud_platform.lake import transaction_record
from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import epoch_day, write_reference
from fraud_platform.simulation.reference import build_world
from fraud_platform.simulation.traffic import generate_day
from fraud_platform.stack.manager import Stack
from fraud_platform.streaming.control import FlinkJobs, deploy
from fraud_platform.streaming.jobs import ENRICHMENT, Deployment
from fraud_platform.topics import TRANSACTIONS_RAW, ensure_topics, topic_name

console = Console()


class Arrivals(threading.Thread):
    """Consumes a topic and notes each message's arrival time (ms) by key."""

    def __init__(self, bootstrap: str, topic: str, isolation: str, key_of) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest", "isolation.level": isolation,
            "fetch.wait.max.ms": 5, "enable.auto.commit": False,
        })  # fmt: skip
        self.consumer.subscribe([topic])
        self.key_of = key_of
        self.arrived: dict[str, float] = {}
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            for message in self.consumer.consume(1000, timeout=0.05):
                if message.error() is None:
                    self.arrived[self.key_of(message)] = time.time() * 1000
        self.consumer.close()


def send(bootstrap: str, topic: str, values: list[tuple[str, str, bytes]], rate: float) -> dict:
    """Send (id, key, value) at `rate` per second; returns id -> send time (ms)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    sent, began = {}, time.monotonic()
    for i, (ident, key, value) in enumerate(values):
        delay = i / rate - (time.monotonic() - began)
        if delay > 0:
            time.sleep(delay)
        now = int(time.time() * 1000)
        producer.produce(topic, value, key, timestamp=now)
        sent[ident] = now
        producer.poll(0)
    producer.flush(60)
    return sent


def percentiles(sent: dict, arrived: dict, skip: int) -> tuple[np.ndarray, int]:
    ids = list(sent)[skip:]
    latencies = np.array([arrived[i] - sent[i] for i in ids if i in arrived])
    return np.percentile(latencies, [50, 95, 99]), len(ids) - len(latencies)


def measure(settings, lake: str, records: list[dict], rate: float, seconds: float, checkpoint: str):
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    ensure_topics(settings.kafka_bootstrap, prefix=prefix)
    count = int(rate * seconds)
    batch = records[:count]
    deployment = Deployment(topic_prefix=prefix, lake_root=lake, checkpoint_interval=checkpoint)
    job_id = deploy(settings, ENRICHMENT, deployment)
    enriched = topic_name("transactions-enriched", prefix)
    by_id = lambda m: ENRICHED_TRANSACTION.decode(m.value())["transaction_id"]  # noqa: E731
    readers = [Arrivals(settings.kafka_bootstrap, enriched, iso, by_id)
               for iso in ("read_uncommitted", "read_committed")]  # fmt: skip
    floor_topic = f"{prefix}floor"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    partitions = TRANSACTIONS_RAW.partitions
    for future in admin.create_topics([NewTopic(floor_topic, partitions, 1)]).values():
        future.result(30)
    floor = Arrivals(settings.kafka_bootstrap, floor_topic, "read_uncommitted",
                     lambda m: m.key().decode())  # fmt: skip
    for reader in (*readers, floor):
        reader.start()
    time.sleep(3)
    values = [(r["transaction_id"], r["user_id"], TRANSACTION.encode(r)) for r in batch]
    began = time.monotonic()
    sent = send(settings.kafka_bootstrap, topic_name("transactions-raw", prefix), values, rate)
    deadline = time.monotonic() + 120
    while len(readers[1].arrived) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    drained = time.monotonic() - began
    floor_values = [(str(i), str(i), b"x" * 400) for i in range(count)]
    floor_sent = send(settings.kafka_bootstrap, floor_topic, floor_values, rate)
    time.sleep(2)
    for reader in (*readers, floor):
        reader.stopping = True
    FlinkJobs(settings).cancel(job_id)
    skip = int(rate * 2)  # the first two seconds warm the job up
    return {
        "processing": percentiles(sent, readers[0].arrived, skip),
        "committed": percentiles(sent, readers[1].arrived, skip),
        "floor": percentiles(floor_sent, floor.arrived, skip),
        "sustained": len(readers[1].arrived) / drained,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 5000])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--checkpoint", default="1s")
    args = parser.parse_args()
    settings = Settings.from_env()
    stack = Stack(settings)
    started = [r.name for r in stack.up(["redis", "kafka", "flink"]) if r.action == "started"]
    try:
        world = build_world(11, n_users=5_000, n_merchants=2_000)
        lake = str(settings.home / "bench-lake")
        write_reference(LakeResource(root=lake), world, "sim11")
        today = epoch_day(datetime.now(UTC).date())
        needed = int(max(args.rates) * args.seconds)
        days = range(today - 1 - needed // 50_000, today)  # oldest first: per-user order
        records = [transaction_record(r) for day in days
                   for r in generate_day(world, day, 50_000).transactions.to_pylist()]  # fmt: skip
        table = Table("rate/s", "path", "P50 ms", "P95 ms", "P99 ms", "x floor (P50/P95/P99)",
                      "not arrived", title="raw -> enriched latency")  # fmt: skip
        for rate in args.rates:
            console.print(f"measuring at {rate:.0f}/s for {args.seconds:.0f} s")
            result = measure(settings, lake, records, rate, args.seconds, args.checkpoint)
            floor, _ = result["floor"]
            for path in ("processing", "committed", "floor"):
                values, missing = result[path]
                ratio = "/".join(f"{v / f:.1f}" for v, f in zip(values, floor, strict=True))
                table.add_row(f"{rate:.0f}", path, *(f"{v:.1f}" for v in values),
                              "" if path == "floor" else ratio, str(missing))  # fmt: skip
            console.print(f"  sustained {result['sustained']:.0f} transactions/s end to end")
        console.print(table)
    finally:
        if started:
            stack.down(started)


if __name__ == "__main__":
    main()
