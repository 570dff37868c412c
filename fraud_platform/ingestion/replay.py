"""Replaying a time range of transactions-ingest through the validator's rules.

For messages dead-lettered wrongly (a rule since corrected, a validator bug) or a range that
must be checked again. Nothing is doubled:
- a message whose transaction already reached transactions-raw is skipped;
- a message that a dead-letter topic already holds (by its source position) and that the rules
  still reject is skipped; one they now accept goes to transactions-raw;
- a transaction id met twice in the replay is delivered once and the repeat counted.
The rest is written as the validator writes it, in Kafka transactions, and the archiver lands
the new raw records in their lake partitions by itself. A second run over the same range finds
everything delivered and writes nothing.

What raw and the dead-letter topics hold is read from an hour before the range (producers'
event-time stamps are not in order) to their end; the range itself is by the ingest records'
timestamps (their event time, which raw records keep).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fraud_platform.contracts import DEAD_LETTER
from fraud_platform.governance import audit
from fraud_platform.ingestion.rules import Rejection
from fraud_platform.ingestion.validator import ValidatorConfig, dead_letter
from fraud_platform.messaging import offsets_at, partitions_of, produce, read_range
from fraud_platform.topics import DLQ_TOPICS, TRANSACTIONS_INGEST, TRANSACTIONS_RAW

SLACK_MS = 3_600_000


@dataclass
class Replay:
    """What a replay did with each message of its range."""

    start_ms: int
    end_ms: int
    read: int = 0
    delivered: int = 0  # newly written to transactions-raw
    dead_lettered: Counter[str] = field(default_factory=Counter)  # newly, by reason
    already_raw: int = 0
    already_dead: int = 0
    repeats: int = 0  # a transaction id the replay had just delivered

    def summary(self) -> dict[str, Any]:
        return {**vars(self), "dead_lettered": dict(self.dead_lettered)}


def _consumer(config: ValidatorConfig) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": config.bootstrap,
            "group.id": f"replay-{uuid.uuid4().hex}",  # assigned, never committed
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )


def _to_end(consumer: Any, topic: str, since_ms: int):
    """Batches of `topic` from `since_ms` to its current end."""
    partitions = partitions_of(consumer, topic)
    begin = offsets_at(consumer, topic, partitions, since_ms)
    stop = offsets_at(consumer, topic, partitions, 2**62)
    return read_range(consumer, topic, begin, stop)


def delivered_ids(config: ValidatorConfig, since_ms: int) -> set[str]:
    """Transaction ids in transactions-raw from `since_ms` on (decoded natively)."""
    consumer, ids = _consumer(config), set()
    for batch in _to_end(consumer, config.topic(TRANSACTIONS_RAW.name), since_ms):
        verdicts = config.rules.check_batch([m.value() for m in batch], int(time.time() * 1000))
        ids.update(transaction_id for transaction_id, *_ in verdicts if transaction_id)
    consumer.close()
    return ids


def dead_positions(config: ValidatorConfig, since_ms: int) -> set[tuple[int, int]]:
    """(partition, offset) of every transactions-ingest message the dead-letter topics hold."""
    consumer, positions = _consumer(config), set()
    ingest = config.topic(TRANSACTIONS_INGEST.name)
    for dlq in DLQ_TOPICS:
        for batch in _to_end(consumer, config.topic(dlq.name), since_ms):
            for message in batch:
                envelope = DEAD_LETTER.decode(message.value())
                if envelope["source_topic"] == ingest:
                    positions.add((envelope["source_partition"], envelope["source_offset"]))
    consumer.close()
    return positions


def replay_ingest(
    config: ValidatorConfig,
    start_ms: int,
    end_ms: int,
    progress: Callable[[int, int], None] = lambda *_: None,
) -> Replay:
    """Replay transactions-ingest messages stamped in [start_ms, end_ms) through the rules;
    `progress(done, total)` after each batch."""
    replayer = _Replayer(config, Replay(start_ms, end_ms))
    consumer, ingest = _consumer(config), config.topic(TRANSACTIONS_INGEST.name)
    partitions = partitions_of(consumer, ingest)
    begin = offsets_at(consumer, ingest, partitions, start_ms)
    stop = offsets_at(consumer, ingest, partitions, end_ms)
    total = sum(max(stop[p] - begin[p], 0) for p in partitions)
    for batch in read_range(consumer, ingest, begin, stop):
        replayer.batch(batch)
        progress(replayer.replay.read, total)
    consumer.close()
    audit.record("replay.ingest", f"{start_ms}-{end_ms}", replayer.replay.summary())
    return replayer.replay


class _Replayer:
    """Sorts each message of a replay by what Kafka already holds of it, and writes the rest
    in one transaction per batch."""

    def __init__(self, config: ValidatorConfig, replay: Replay) -> None:
        from confluent_kafka import Producer

        self.config, self.replay = config, replay
        self.raw_ids = delivered_ids(config, replay.start_ms - SLACK_MS)
        self.dead = dead_positions(config, replay.start_ms - SLACK_MS)
        self.replayed: set[str] = set()
        self.producer = Producer(
            {
                "bootstrap.servers": config.bootstrap,
                "transactional.id": f"{config.instance}-replay",
                "linger.ms": 5,
            }
        )
        self.producer.init_transactions(30)

    def batch(self, messages: list[Any]) -> None:
        now = int(time.time() * 1000)
        verdicts = self.config.rules.check_batch([m.value() for m in messages], now)
        self.producer.begin_transaction()
        for message, verdict in zip(messages, verdicts, strict=True):
            self._one(message, *verdict)
        self.producer.commit_transaction(60)
        self.replay.read += len(messages)

    def _one(
        self,
        message: Any,
        transaction_id: str | None,
        user_id: str | None,
        rejected: tuple[str, str, str] | None,
        event_ms: int | None,
    ) -> None:
        replay, topic = self.replay, self.config.topic
        if rejected is None:
            if transaction_id in self.replayed:
                replay.repeats += 1
            elif transaction_id in self.raw_ids:
                replay.already_raw += 1
            else:
                raw = topic(TRANSACTIONS_RAW.name)
                produce(self.producer, raw, user_id, message.value(), max(event_ms or 0, 0))
                self.replayed.add(transaction_id)
                replay.delivered += 1
        elif (message.partition(), message.offset()) in self.dead:
            replay.already_dead += 1
        else:
            rejection = Rejection(*rejected)
            key, envelope = dead_letter(message, transaction_id, rejection, int(time.time() * 1000))
            produce(self.producer, topic(rejection.dlq), key, envelope)
            replay.dead_lettered[rejection.reason] += 1
