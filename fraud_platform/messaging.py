"""Kafka client patterns of the hot path: producing without dropping a message when the
client's local queue is full, and consuming in batches without waiting for one to fill."""

from __future__ import annotations


def produce(
    producer, topic: str, key: bytes | str | None, value: bytes | None, timestamp: int = 0
) -> None:
    """Produce, serving delivery callbacks and retrying while the local queue is full.

    `timestamp` (epoch ms) becomes the record's timestamp: transactions carry their event
    time there, so the streaming jobs take event time and per-partition watermarks from the
    record without decoding it. Kept to one plain call when the queue has room: the
    validator's hot loop runs it once per message (confluent-kafka encodes a str key itself).
    """
    while True:
        try:
            producer.produce(topic, value, key, timestamp=timestamp)
            return
        except BufferError:
            producer.poll(0.05)


def consume_ready(consumer, size: int, timeout: float) -> list:
    """Up to `size` messages, returned as soon as there is one.

    `Consumer.consume(size, timeout)` returns when it has `size` messages or when `timeout`
    has passed, so below `size` messages per `timeout` (any quiet hour) every message waits
    up to `timeout` on top of its latency. Blocking for the first message only, then taking
    what the client has already fetched, keeps batches large under load and adds no wait.
    """
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(size - 1, timeout=0)] if size > 1 else [first]
