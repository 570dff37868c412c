"""Kafka client patterns: producing without dropping a message when the client's local queue
is full, consuming in batches without waiting for one to fill, and noticing a client that a
fatal error has made unusable."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("fraud_platform.messaging")


class FatalWatch:
    """A client's `error_cb` that keeps the first fatal error, for a loop to check.

    librdkafka fences a static group member (`group.instance.id`) that rejoins after its
    session timed out, as it does when the broker is gone longer than `session.timeout.ms`
    (confluentinc/librdkafka#3437). The consumer is unusable from then on: its calls just
    return nothing. A loop that checks `error` replaces the client.
    """

    def __init__(self) -> None:
        self.error: Any = None  # confluent_kafka.KafkaError

    def __call__(self, error: Any) -> None:
        """Take any client error; keep it if fatal. A consumer reports its fatal error as a
        message whose error is `_FATAL`, not through `error_cb`: pass those here too."""
        from confluent_kafka import KafkaError

        if error.fatal() or error.code() == KafkaError._FATAL:
            self.record(error)

    def record(self, error: Any) -> None:
        """Note an error that leaves the client unusable, such as the broker's answer that
        this member was fenced, which can come from a call before `error_cb` is served."""
        if self.error is None:
            log.error("Kafka client unusable: %s", error)
            self.error = error


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


class CallWatchdog:
    """Restarts this process in place (the same pid) when a Kafka client call overruns its own
    timeout by `grace_s`.

    librdkafka can block in `send_offsets_to_transaction` past its timeout, for good, once the
    broker it knew as the group coordinator has gone (confluentinc/librdkafka#5456, #5511): a
    broker restart is enough. A thread inside a C call cannot be interrupted from Python, so
    the way out is to exec `argv` afresh. A transactional worker loses nothing by it: its new
    producer aborts the open transaction, and the batch is read again from the committed
    offsets.
    """

    def __init__(self, argv: list[str], grace_s: float = 15.0) -> None:
        self.argv, self.grace_s = argv, grace_s
        self.call: tuple[str, float] | None = None  # (what, monotonic deadline)
        threading.Thread(target=self._watch, daemon=True, name="call-watchdog").start()

    @contextlib.contextmanager
    def calling(self, what: str, timeout_s: float) -> Iterator[None]:
        self.call = (what, time.monotonic() + timeout_s + self.grace_s)
        try:
            yield
        finally:
            self.call = None

    def _watch(self) -> None:
        while True:
            time.sleep(0.5)
            call = self.call
            if call is not None and time.monotonic() > call[1]:
                restart = " ".join(self.argv)
                log.error("%s overran its timeout by %.0f s (librdkafka#5511); restarting this "
                          "process in place: %s", call[0], self.grace_s, restart)  # fmt: skip
                for handler in logging.getLogger().handlers:
                    handler.flush()
                os.execv(self.argv[0], self.argv)


def offsets_at(consumer: Any, topic: str, partitions: list[int], millis: int) -> dict[int, int]:
    """First offset at or after `millis` (Kafka timestamp) in each partition; the end when
    there is none."""
    from confluent_kafka import TopicPartition

    found = consumer.offsets_for_times([TopicPartition(topic, p, millis) for p in partitions], 30)
    offsets = {}
    for tp in found:
        if tp.offset < 0:  # no message that late: up to the current end
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 30)
            offsets[tp.partition] = high
        else:
            offsets[tp.partition] = tp.offset
    return offsets


def partitions_of(consumer: Any, topic: str) -> list[int]:
    return sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)


def read_range(
    consumer: Any, topic: str, begin: dict[int, int], stop: dict[int, int], batch: int = 5000
) -> Iterator[list[Any]]:
    """Batches of `topic`'s messages from `begin` up to `stop` (exclusive) in each partition,
    read by an assigned (group-less) consumer; done when every partition reached its stop."""
    from confluent_kafka import TopicPartition

    remaining = {p for p in begin if begin[p] < stop[p]}
    consumer.assign([TopicPartition(topic, p, begin[p]) for p in remaining])
    while remaining:
        messages = consumer.consume(batch, timeout=1)
        ready = [m for m in messages if m.error() is None and m.offset() < stop[m.partition()]]
        if ready:
            yield ready
        # Positions move past transaction markers too, which are never delivered as messages.
        positions = consumer.position([TopicPartition(topic, p) for p in remaining])
        remaining -= {tp.partition for tp in positions if tp.offset >= stop[tp.partition]}
