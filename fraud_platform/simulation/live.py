"""Live mode: today's simulated payments into transactions-ingest at a chosen rate.

Payments keep their simulated attributes but carry the time they are sent. Labels arrive as
investigations complete: the labels of the previous 30 simulated days (generated in the
background) are published on fraud-labels once their completion time has passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pyarrow as pa

from fraud_platform.contracts import FRAUD_LABEL, TRANSACTION
from fraud_platform.lake import label_record, transaction_record
from fraud_platform.messaging import produce
from fraud_platform.simulation.history import epoch_day
from fraud_platform.simulation.reference import World
from fraud_platform.simulation.traffic import generate_day
from fraud_platform.topics import FRAUD_LABELS, TRANSACTIONS_INGEST, topic_name

LABEL_LOOKBACK_DAYS = 30


def transaction_messages(table: pa.Table) -> Iterator[dict]:
    for row in table.to_pylist():
        yield transaction_record(row)


def labels_naming_entities(labels: pa.Table, transactions: pa.Table) -> list[dict]:
    """Label messages with the card holder and merchant of their transactions (label v2)."""
    columns = [transactions[c].to_pylist() for c in ("transaction_id", "user_id", "merchant_id")]
    entities = {tid: (user, merchant) for tid, user, merchant in zip(*columns, strict=True)}
    messages = []
    for record in map(label_record, labels.to_pylist()):
        user, merchant = entities.get(record["transaction_id"], (None, None))
        messages.append({**record, "user_id": user, "merchant_id": merchant})
    return messages


class PendingLabels:
    """Labels of recent simulated days, released once their investigation completes."""

    def __init__(self, world: World, today: int, volume: int, since_ms: int) -> None:
        self._labels: list[dict] = []
        self._lock = threading.Lock()
        self._since_ms = since_ms
        self._thread = threading.Thread(
            target=self._load, args=(world, today, volume), daemon=True, name="labels"
        )
        self._thread.start()

    def _load(self, world: World, today: int, volume: int) -> None:
        for day in range(today - LABEL_LOOKBACK_DAYS, today):
            traffic = generate_day(world, day, volume)
            due = [
                m
                for m in labels_naming_entities(traffic.labels, traffic.transactions)
                if m["investigation_complete_time"] >= self._since_ms
            ]
            with self._lock:
                self._labels = sorted(
                    self._labels + due, key=lambda m: m["investigation_complete_time"]
                )

    def due(self, now_ms: int) -> list[dict]:
        with self._lock:
            ready = [m for m in self._labels if m["investigation_complete_time"] <= now_ms]
            self._labels = self._labels[len(ready) :]
        return ready


def run_live(
    world: World,
    producer,  # confluent_kafka.Producer
    rate: float,
    count: int,
    volume: int = 100_000,
    topic_prefix: str = "",
    progress: Callable[[int], None] = lambda sent: None,
) -> tuple[int, int]:
    """Send `count` payments (0: until stopped) at `rate` per second; returns (payments,
    labels) sent. `progress` is called once per tick, so it can also prove the sender alive."""
    started_ms = int(time.time() * 1000)
    today = epoch_day(datetime.now(UTC).date())
    pending = PendingLabels(world, today, volume, started_ms)
    ingest = topic_name(TRANSACTIONS_INGEST.name, topic_prefix)
    labels_topic = topic_name(FRAUD_LABELS.name, topic_prefix)
    day = today
    payments = transaction_messages(generate_day(world, day, volume).transactions)
    sent = labels = 0
    began = time.monotonic()
    while count == 0 or sent < count:
        target = int((time.monotonic() - began) * rate) + 1
        target = min(count, target) if count else target
        now_ms = int(time.time() * 1000)
        while sent < target:
            record = next(payments, None)
            if record is None:  # the day ran out: carry on with the next simulated day
                day += 1
                payments = transaction_messages(generate_day(world, day, volume).transactions)
                continue
            record["timestamp"] = now_ms
            produce(producer, ingest, record["user_id"], TRANSACTION.encode(record), now_ms)
            sent += 1
        for label in pending.due(now_ms):
            produce(producer, labels_topic, label["transaction_id"], FRAUD_LABEL.encode(label))
            labels += 1
        producer.poll(0)
        progress(sent)
        time.sleep(max(0.0, (sent / rate) - (time.monotonic() - began)))
    producer.flush(30)
    return sent, labels
