"""Producing to Kafka without dropping a message when the client's local queue is full."""

from __future__ import annotations


def produce(producer, topic: str, key: bytes | str | None, value: bytes | None) -> None:
    """Produce, serving delivery callbacks and retrying while the local queue is full."""
    if isinstance(key, str):
        key = key.encode()
    while True:
        try:
            producer.produce(topic, key=key, value=value)
            return
        except BufferError:
            producer.poll(0.05)
