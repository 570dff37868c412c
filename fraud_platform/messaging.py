"""Producing to Kafka without dropping a message when the client's local queue is full."""

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
