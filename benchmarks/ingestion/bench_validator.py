"""Validator throughput against a bare confluent-kafka passthrough, same broker and data.

    uv run python benchmarks/ingestion/bench_validator.py [--messages 200000]

Both read the same prefixed transactions-ingest topic (each with its own consumer group) and
write every message to an output topic, batch by batch. The validator also decodes and
validates each message, deduplicates through Redis and commits each batch in a Kafka
transaction; the passthrough does nothing but copy. Prints both rates and the ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from fraud_platform.config import Settings
from fraud_platform.contracts import TRANSACTION
from fraud_platform.ingestion.metrics import IngestionMetrics
from fraud_platform.ingestion.validator import Validator, ValidatorConfig
from fraud_platform.messaging import produce
from fraud_platform.stack.manager import Stack
from fraud_platform.topics import ALL_TOPICS, ensure_topics, topic_name

BATCH = 2000


def fill(bootstrap: str, topic: str, n: int, run: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    now = int(time.time() * 1000)
    for i in range(n):
        record = {
            "transaction_id": f"{run}-{i}",
            "user_id": f"user_{i % 5000}",
            "merchant_id": f"merch_{i % 10000}",
            "amount": 5.0 + i % 500,
            "currency": "EUR",
            "timestamp": now,
            "location": {"lat": 48.85, "lon": 2.35},
            "country": "FR",
            "device": "mobile",
            "device_id": f"dev_{i % 5000}",
            "channel": "online",
            "card_last4": f"{i % 10000:04d}",
            "declined": False,
        }
        produce(producer, topic, record["user_id"], TRANSACTION.encode(record))
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)


def passthrough(bootstrap: str, source: str, sink: str, n: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-passthrough-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 16 * 1024 * 1024,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 500_000,
        }
    )
    consumer.subscribe([source])
    done, started = 0, None
    while done < n:
        messages = [m for m in consumer.consume(BATCH, timeout=1) if m.error() is None]
        if messages and started is None:
            started = time.perf_counter()
        for m in messages:
            produce(producer, sink, m.key(), m.value())
        done += len(messages)
        consumer.commit(asynchronous=True)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    consumer.close()
    return n / elapsed


class BatchClock(IngestionMetrics):
    """Metrics that also note when each batch committed, to time the steady state."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[float, int]] = []  # (commit time, messages)

    def record_batch(self, outcomes) -> None:
        super().record_batch(outcomes)
        self.batches.append((time.perf_counter(), sum(outcomes.values())))


def _validate_until_idle(settings: Settings, prefix: str, group: str, index: int, out) -> None:
    """The service's own loop (`Validator.run`), until the topic has been idle for 3 s."""
    clock = BatchClock()
    config = ValidatorConfig(
        bootstrap=settings.kafka_bootstrap,
        redis_url=settings.redis_url,
        topic_prefix=prefix,
        group_id=f"{prefix}{group}",
        transactional_id=f"{prefix}{group}-w{index}",
    )
    Validator(config, clock).run(idle_exit_s=3)
    out.put(clock.batches)


def validator(settings: Settings, prefix: str, n: int, workers: int) -> float:
    """Messages/s of `workers` validator processes sharing one consumer group."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    group = f"bench-validator-{workers}"
    processes = [
        context.Process(target=_validate_until_idle, args=(settings, prefix, group, i, out))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    batches = sorted(b for _ in processes for b in out.get())
    for process in processes:
        process.join()
    done = sum(size for _, size in batches)
    assert done == n, f"validated {done} of {n}"
    # From the first commit to the last: the messages committed after the first batch.
    return (n - batches[0][1]) / (batches[-1][0] - batches[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    settings = Settings.from_env()
    stack = Stack(settings)
    started = [r.name for r in stack.up(["redis", "kafka"]) if r.action == "started"]
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    try:
        ensure_topics(settings.kafka_bootstrap, prefix=prefix)
        sink = f"{prefix}passthrough"
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        admin.create_topics([NewTopic(sink, 3, 1)])[sink].result(30)
        ingest = topic_name("transactions-ingest", prefix)
        print(f"producing {args.messages:,} transactions into {ingest} ...")
        fill(settings.kafka_bootstrap, ingest, args.messages, prefix)
        base = passthrough(settings.kafka_bootstrap, ingest, sink, args.messages)
        one = validator(settings, prefix, args.messages, workers=1)
        two = validator(settings, prefix, args.messages, workers=2)
    finally:
        names = [topic_name(t.name, prefix) for t in ALL_TOPICS] + [f"{prefix}passthrough"]
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).delete_topics(names)
        if started:
            stack.down(started)
    result = {
        "messages": args.messages,
        "passthrough_msgs_per_s": round(base),
        "validator_1_process_msgs_per_s": round(one),
        "validator_2_processes_msgs_per_s": round(two),
        "ratio_1_process": round(one / base, 3),
        "ratio_2_processes": round(two / base, 3),
    }
    print(f"bare passthrough (1 process) : {base:>10,.0f} msg/s")
    print(f"validator, 1 process         : {one:>10,.0f} msg/s   ratio {one / base:.2f}")
    print(f"validator, 2 processes       : {two:>10,.0f} msg/s   ratio {two / base:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
