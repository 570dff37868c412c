"""Scorer throughput: the platform's scorer (Redis features in one round trip per batch, the
production model, one prediction per transaction) against a bare confluent-kafka
consume -> produce passthrough of the same messages, in one run.

    uv run python benchmarks/streaming/bench_scorer.py [--messages 50000]

The model is an XGBoost of the platform's shape (the catalog's features, 200 rounds, depth 6)
trained on random data in a throwaway lake. Prints messages/s of each and the ratio. Starts
Redis and Kafka when they are not running and stops what it started.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

import numpy as np
import pandas as pd
import redis
from confluent_kafka import Consumer, Producer
from rich.console import Console

from fraud_platform.config import Settings
from fraud_platform.contracts import ENRICHED_TRANSACTION
from fraud_platform.features.stream import enriched_feature_names
from fraud_platform.messaging import consume_ready
from fraud_platform.models import registry
from fraud_platform.models.training import Hyperparameters, train
from fraud_platform.resources import LakeResource
from fraud_platform.stack.manager import Stack
from fraud_platform.streaming.scorer import FEATURES, Scorer, ScorerConfig
from fraud_platform.topics import ensure_topics, topic_name

console = Console()


def production_model(lake) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({name: rng.random(20_000) for name in FEATURES})
    frame["merchant_category"] = rng.choice(["grocery", "travel", "online"], 20_000)
    frame["merchant_risk_tier"] = rng.choice(["low", "medium", "high"], 20_000)
    frame["label"] = (rng.random(20_000) < 0.05).astype(int)
    frame["split"] = "train"
    booster, _ = train(frame, Hyperparameters(max_depth=6, rounds=200))
    registry.save_candidate(lake, "bench", bytes(booster.save_raw(raw_format="json")), {})
    registry.promote(lake, "bench", "benchmark")


def fill(settings, prefix: str, count: int) -> None:
    rng = np.random.default_rng(6)
    names = enriched_feature_names()
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20})
    for i in range(count):
        features = {n: float(v) for n, v in zip(names, rng.random(len(names)), strict=True)}
        features["merchant_category"], features["merchant_risk_tier"] = "grocery", "low"
        record = {"transaction_id": f"t{i}", "user_id": f"u{i % 5000}",
                  "merchant_id": f"m{i % 2000}", "timestamp": int(time.time() * 1000),
                  "features": features, "feature_version": "v1"}  # fmt: skip
        producer.produce(topic_name("transactions-enriched", prefix),
                         ENRICHED_TRANSACTION.encode(record), record["user_id"])  # fmt: skip
        producer.poll(0)
    producer.flush(60)
    client = redis.Redis.from_url(settings.redis_url)
    pipe = client.pipeline(transaction=False)
    merchant = {"merchant_transaction_volume_24h": 50, "merchant_unique_customers_24h": 20}
    for m in range(2000):
        pipe.hset(f"{prefix}merchant:m{m}", mapping=merchant)
    pipe.execute()


def passthrough(settings, prefix: str, count: int) -> float:
    """The floor: consume the same batches, produce each message on, flush, commit."""
    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap, "group.id": f"floor-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })  # fmt: skip
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 2,
                         "enable.idempotence": True})  # fmt: skip
    consumer.subscribe([topic_name("transactions-enriched", prefix)])
    out, seen, began = topic_name("model-predictions", prefix), 0, None
    while seen < count:
        messages = [m for m in consume_ready(consumer, 500, timeout=0.2) if m.error() is None]
        if not messages:  # nothing yet (the partitions not assigned): nothing to commit
            continue
        began = began or time.perf_counter()
        for message in messages:
            producer.produce(out, message.value(), message.key())
        producer.flush(30)
        consumer.commit(asynchronous=False)
        seen += len(messages)
    consumer.close()
    return seen / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    # It promotes its own model in its own throwaway lake: the ML architect's right (RBAC), so
    # it acts as one unless FRAUD_ROLE says otherwise.
    os.environ.setdefault("FRAUD_ROLE", "ml_architect")
    settings = Settings.from_env()
    stack = Stack(settings)
    started = [r.name for r in stack.up(["redis", "kafka"]) if r.action == "started"]
    try:
        prefix = f"bench{uuid.uuid4().hex[:6]}-"
        ensure_topics(settings.kafka_bootstrap, prefix=prefix)
        lake = LakeResource(root=tempfile.mkdtemp(prefix="bench-scorer-"))
        with console.status("training the model, filling Kafka and Redis"):
            production_model(lake)
            fill(settings, prefix, args.messages)
        floor = passthrough(settings, prefix, args.messages)
        config = ScorerConfig(settings.kafka_bootstrap, settings.redis_url, topic_prefix=prefix,
                              key_prefix=prefix, group=f"bench-{uuid.uuid4().hex}")  # fmt: skip
        scorer = Scorer(config, lake)
        began = time.perf_counter()
        scored = scorer.run(idle_exit_s=2)
        rate = scored / (time.perf_counter() - began - 2)
        console.print(f"scorer       {rate:>10,.0f} predictions/s ({scored:,} scored)")
        console.print(f"passthrough  {floor:>10,.0f} messages/s")
        console.print(f"ratio        {rate / floor:>10.2f}")
    finally:
        if started:
            stack.down(started)


if __name__ == "__main__":
    main()
