"""The Layer-1 ingestion validator: transactions-ingest -> transactions-raw or a dlq-* topic.

Exactly once: each consumed batch is written (valid records to transactions-raw, the rest to
their dead-letter topic in an envelope) and its input offsets committed in one Kafka
transaction, so a crash at any point replays the batch without duplicating or losing a record.

Dedup: a transaction_id seen within the window (60 s) is a duplicate. Redis holds
`dedup:{transaction_id}` -> the position (partition:offset) of its first occurrence, set with
SET NX EX. A replayed batch finds its own positions there and is not mistaken for duplicates.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from fraud_platform.config import Settings
from fraud_platform.contracts import DEAD_LETTER
from fraud_platform.ingestion.metrics import IngestionMetrics
from fraud_platform.ingestion.rules import DUPLICATES, PROCESSING_ERRORS, Rejection, Rules
from fraud_platform.messaging import produce
from fraud_platform.topics import TRANSACTIONS_INGEST, TRANSACTIONS_RAW, topic_name

log = logging.getLogger("fraud_platform.ingestion")
VALID = "valid"
# KEYS: dedup keys; ARGV: one position per key, then the window in seconds.
# Returns per key 0 when this call claimed it, else the position already holding it.
CLAIM_SCRIPT = """
local window = ARGV[#ARGV]
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[i], 'NX', 'EX', window) then
    out[i] = 0
  else
    out[i] = redis.call('GET', key) or 0
  end
end
return out
"""


@dataclass(frozen=True)
class ValidatorConfig:
    bootstrap: str
    redis_url: str
    topic_prefix: str = ""
    group_id: str = "ingestion-validator"
    transactional_id: str = ""
    batch_size: int = 2000
    dedup_window_s: int = 60
    metrics_port: int = 0  # 0: no endpoint
    rules: Rules = field(default_factory=Rules)

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> ValidatorConfig:
        settings = settings or Settings.from_env()
        prefix = os.environ.get("FRAUD_TOPIC_PREFIX", "")
        return cls(
            bootstrap=settings.kafka_bootstrap,
            redis_url=settings.redis_url,
            topic_prefix=prefix,
            group_id=f"{prefix}ingestion-validator",
            batch_size=int(os.environ.get("FRAUD_VALIDATOR_BATCH", 2000)),
            dedup_window_s=int(os.environ.get("FRAUD_DEDUP_WINDOW_S", 60)),
            metrics_port=int(os.environ.get("FRAUD_VALIDATOR_METRICS_PORT", 9308)),
            rules=Rules.from_env(),
        )

    def topic(self, catalog_name: str) -> str:
        return topic_name(catalog_name, self.topic_prefix)


@dataclass
class Outcome:
    message: Any  # confluent_kafka.Message
    record: dict | None = None
    rejection: Rejection | None = None

    @property
    def position(self) -> str:
        return f"{self.message.partition()}:{self.message.offset()}"


class Validator:
    def __init__(self, config: ValidatorConfig, metrics: IngestionMetrics | None = None) -> None:
        import redis
        from confluent_kafka import Consumer, Producer

        self.config = config
        instance = config.transactional_id or f"{config.group_id}-{socket.gethostname()}"
        self.metrics = metrics or IngestionMetrics()
        self.redis = redis.Redis.from_url(config.redis_url)
        self._claim = self.redis.register_script(CLAIM_SCRIPT)
        self.consumer = Consumer(
            {
                "bootstrap.servers": config.bootstrap,
                "group.id": config.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.max.bytes": 16 * 1024 * 1024,
                # Static membership: a restarted validator takes its partitions straight back
                # instead of waiting out the dead member's session.
                "group.instance.id": instance,
                "session.timeout.ms": 10_000,
            }
        )
        self.producer = Producer(
            {
                "bootstrap.servers": config.bootstrap,
                "transactional.id": instance,
                "linger.ms": 5,
                "batch.size": 1_000_000,
                "queue.buffering.max.messages": 500_000,
                "transaction.timeout.ms": 60_000,
            }
        )
        self.producer.init_transactions(30)
        self.consumer.subscribe([config.topic(TRANSACTIONS_INGEST.name)])
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, idle_exit_s: float | None = None) -> None:
        """Process batches until stop() (or SIGTERM), or after `idle_exit_s` without input."""
        last_input = time.monotonic()
        try:
            while not self._stop.is_set():
                messages = self.consumer.consume(self.config.batch_size, timeout=0.5)
                messages = [m for m in messages if not self._is_partition_event(m)]
                if messages:
                    self.process(messages)
                    last_input = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - last_input > idle_exit_s:
                    break
        finally:
            self.consumer.close()

    @staticmethod
    def _is_partition_event(message: Any) -> bool:
        from confluent_kafka import KafkaError, KafkaException

        error = message.error()
        if error is None:
            return False
        if error.code() == KafkaError._PARTITION_EOF:
            return True
        raise KafkaException(error)

    def process(self, messages: list[Any]) -> Counter[tuple[str, str]]:
        """Validate, dedup and write one batch in one transaction; returns its outcome counts."""
        now_ms = int(time.time() * 1000)
        outcomes = [self._classify(m, now_ms) for m in messages]
        self._dedup(outcomes)
        while True:
            try:
                counts = self._write(outcomes)
                break
            except Exception as error:  # KafkaException: abort, rewind, retry the same batch
                if not self._recoverable(error):
                    raise
                log.warning("transaction failed (%s); retrying the batch", error)
                self.producer.abort_transaction(30)
        self.metrics.record_batch(counts)
        return counts

    def _classify(self, message: Any, now_ms: int) -> Outcome:
        try:
            record, rejection = self.config.rules.check(message.value(), now_ms)
            return Outcome(message, record, rejection)
        except Exception as error:  # a bug must not lose the message: dead-letter it
            return Outcome(
                message,
                None,
                Rejection(PROCESSING_ERRORS, "validator_error", f"{type(error).__name__}: {error}"),
            )

    def _dedup(self, outcomes: list[Outcome]) -> None:
        """Mark repeats of a transaction_id within the window; replays of our own are kept.

        One script call per batch: SET NX EX each key to its message's position and return,
        for keys already taken, the position that holds them.
        """
        candidates = [o for o in outcomes if o.rejection is None]
        if not candidates:
            return
        window = self.config.dedup_window_s
        holders = self._claim(
            keys=[f"dedup:{o.record['transaction_id']}" for o in candidates],
            args=[*(o.position for o in candidates), window],
        )
        for o, holder in zip(candidates, holders, strict=True):
            if holder != 0 and holder.decode() != o.position:
                o.rejection = Rejection(
                    DUPLICATES,
                    "duplicate",
                    f"transaction_id {o.record['transaction_id']} already seen at "
                    f"{holder.decode()} within {window}s",
                )

    def _write(self, outcomes: list[Outcome]) -> Counter[tuple[str, str]]:
        counts: Counter[tuple[str, str]] = Counter()
        raw_topic = self.config.topic(TRANSACTIONS_RAW.name)
        rejected_at = int(time.time() * 1000)
        self.producer.begin_transaction()
        for o in outcomes:
            m = o.message
            if o.rejection is None:
                produce(self.producer, raw_topic, o.record["user_id"].encode(), m.value())
                counts[(TRANSACTIONS_RAW.name, VALID)] += 1
                continue
            transaction_id = (o.record or {}).get("transaction_id")
            envelope = DEAD_LETTER.encode(
                {
                    "original_key": m.key(),
                    "original_value": m.value(),
                    "reason": o.rejection.reason,
                    "detail": o.rejection.detail,
                    "source_topic": m.topic(),
                    "source_partition": m.partition(),
                    "source_offset": m.offset(),
                    "source_timestamp": m.timestamp()[1] if m.timestamp()[0] else None,
                    "rejected_at": rejected_at,
                    "transaction_id": transaction_id if isinstance(transaction_id, str) else None,
                }
            )
            key = transaction_id.encode() if isinstance(transaction_id, str) else m.key()
            produce(self.producer, self.config.topic(o.rejection.dlq), key, envelope)
            counts[(o.rejection.dlq, o.rejection.reason)] += 1
        self.producer.send_offsets_to_transaction(
            self._next_offsets(outcomes), self.consumer.consumer_group_metadata(), 30
        )
        self.producer.commit_transaction(60)
        return counts

    @staticmethod
    def _next_offsets(outcomes: list[Outcome]) -> list[Any]:
        from confluent_kafka import TopicPartition

        last: dict[tuple[str, int], int] = {}
        for o in outcomes:
            tp = (o.message.topic(), o.message.partition())
            last[tp] = max(last.get(tp, -1), o.message.offset())
        return [TopicPartition(t, p, offset + 1) for (t, p), offset in last.items()]

    @staticmethod
    def _recoverable(error: Exception) -> bool:
        kafka_error = error.args[0] if error.args else None
        return bool(
            kafka_error is not None
            and hasattr(kafka_error, "txn_requires_abort")
            and (kafka_error.txn_requires_abort() or kafka_error.retriable())
        )


def run_worker(config: ValidatorConfig, index: int) -> None:
    """One validator process; its own transactional id, its share of the partitions."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    instance = config.transactional_id or f"{config.group_id}-{socket.gethostname()}"
    config = replace(
        config,
        transactional_id=f"{instance}-w{index}",
        metrics_port=config.metrics_port + index if config.metrics_port else 0,
    )
    validator = Validator(config)
    if config.metrics_port:
        validator.metrics.serve(config.metrics_port)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: validator.stop())
    log.info(
        "worker %d validating %s -> %s (metrics on :%s)",
        index,
        config.topic(TRANSACTIONS_INGEST.name),
        config.topic(TRANSACTIONS_RAW.name),
        config.metrics_port,
    )
    validator.run()


def main(workers: int = 1) -> None:
    """Run `workers` validator processes until SIGTERM/SIGINT.

    Decoding and validating is CPU-bound Python, so throughput scales with processes (one
    consumer-group member each, up to the topic's partition count), not threads.
    """
    config = ValidatorConfig.from_env()
    if workers == 1:
        run_worker(config, 0)
        return
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=run_worker, args=(config, i)) for i in range(workers)]
    for process in processes:
        process.start()

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.pid:
                os.kill(process.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for process in processes:
        process.join()


if __name__ == "__main__":
    main()
