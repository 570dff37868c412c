"""Producing to Kafka without dropping a message when the client's local queue is full."""

from __future__ import annotations


def produce(producer, topic: str, key: bytes | str | None, value: bytes | None) -> None:
    """Produce, serving delivery callbacks and retrying while the local queue is full.

    Kept to one positional call when the queue has room: the validator's hot loop runs it once
    per message (confluent-kafka encodes a str key itself).
    """
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.05)
