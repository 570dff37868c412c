"""The Layer-1 ingestion validator: transactions-ingest -> transactions-raw or a dlq-* topic.

Exactly once: each consumed batch is written (valid records to transactions-raw, the rest to
their dead-letter topic in an envelope) and its input offsets committed in one Kafka
transaction, so a crash at any point replays the batch without duplicating or losing a record.

Dedup: a transaction_id seen within the window (60 s) is a duplicate. Redis holds
`dedup:{transaction_id}` -> the position (partition:offset) of its first occurrence, set with
SET NX EX. A replayed batch finds its own positions there and is not mistaken for duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from fraud_platform.config import Settings
from fraud_platform.contracts import DEAD_LETTER
from fraud_platform.governance.pci import mask_pans_in_bytes, mask_text
from fraud_platform.ingestion.metrics import IngestionMetrics
from fraud_platform.ingestion.rules import (
    DUPLICATES,
    PROCESSING_ERRORS,
    RawVerdict,
    Rejection,
    Rules,
)
from fraud_platform.messaging import CallWatchdog, FatalWatch, consume_ready, produce
from fraud_platform.topics import TRANSACTIONS_INGEST, TRANSACTIONS_RAW, topic_name

log = logging.getLogger("fraud_platform.ingestion")
VALID = "valid"
ORIGINALS = "dead_letters/originals"  # in the lake: oversized originals, by their sha256
# ARGV[1]: one "transaction_id<TAB>position<LF>" line per claim (ids are printable, so never
# hold either separator); ARGV[2]: the window in seconds. One blob rather than a key and a value
# per claim halves the cost of a batch on both sides of the socket (single-node Redis: the keys
# are built inside the script). SET NX GET (Redis >= 7.0) claims a free key and returns the
# holder of a taken one. Returns the taken ones only, flat: line number (1-based), holder, ...
CLAIM_SCRIPT = r"""
local window = ARGV[2]
local taken = {}
local line = 0
for id, position in string.gmatch(ARGV[1], "([^\t\n]+)\t([^\n]+)\n") do
  line = line + 1
  local holder = redis.call('SET', 'dedup:' .. id, position, 'NX', 'GET', 'EX', window)
  if holder then
    taken[#taken + 1] = line
    taken[#taken + 1] = holder
  end
end
return taken
"""


@dataclass(frozen=True)
class ValidatorConfig:
    bootstrap: str
    redis_url: str
    topic_prefix: str = ""
    group_id: str = "ingestion-validator"
    transactional_id: str = ""
    batch_size: int = 10000
    dedup_window_s: int = 60
    metrics_port: int = 0  # 0: no endpoint
    rules: Rules = field(default_factory=Rules)
    lake_root: str = ""  # where oversized originals are kept whole ("" : not kept)

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> ValidatorConfig:
        settings = settings or Settings.from_env()
        prefix = os.environ.get("FRAUD_TOPIC_PREFIX", "")
        return cls(
            bootstrap=settings.kafka_bootstrap,
            redis_url=settings.redis_url,
            topic_prefix=prefix,
            group_id=f"{prefix}ingestion-validator",
            # Names this member (static membership, transactional id); default: the host.
            transactional_id=os.environ.get("FRAUD_VALIDATOR_INSTANCE", ""),
            batch_size=int(os.environ.get("FRAUD_VALIDATOR_BATCH", cls.batch_size)),
            dedup_window_s=int(os.environ.get("FRAUD_DEDUP_WINDOW_S", 60)),
            metrics_port=int(os.environ.get("FRAUD_VALIDATOR_METRICS_PORT", 9308)),
            rules=Rules.from_env(),
            lake_root=settings.lake_root,
        )

    @property
    def instance(self) -> str:
        """Names this member: its static group membership and its transactional id."""
        return self.transactional_id or f"{self.group_id}-{socket.gethostname()}"

    def topic(self, catalog_name: str) -> str:
        return topic_name(catalog_name, self.topic_prefix)


@dataclass(frozen=True)
class Staged:
    """A batch checked and deduplicated, ready to be written in one transaction."""

    messages: list[Any]  # confluent_kafka.Message
    values: list[bytes | None]
    verdicts: list[RawVerdict]
    duplicates: dict[int, Rejection]  # batch index -> why it is a duplicate


class Validator:
    def __init__(
        self,
        config: ValidatorConfig,
        metrics: IngestionMetrics | None = None,
        watchdog: CallWatchdog | None = None,
    ) -> None:
        import redis

        self.config = config
        self.watchdog = watchdog
        self.metrics = metrics or IngestionMetrics()
        self.redis = redis.Redis.from_url(config.redis_url)
        self._claim = self.redis.register_script(CLAIM_SCRIPT)
        self._stop = threading.Event()
        self._pending: Future[Staged] | None = None
        self._connect()

    def _connect(self) -> None:
        """A consumer-group member and its transactional producer, both named by the instance."""
        from confluent_kafka import Consumer, Producer

        config = self.config
        self.fatal = FatalWatch()
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
                "group.instance.id": config.instance,
                "session.timeout.ms": 10_000,
                "error_cb": self.fatal,
            }
        )
        self.producer = Producer(
            {
                "bootstrap.servers": config.bootstrap,
                "transactional.id": config.instance,
                "linger.ms": 5,
                "batch.size": 1_000_000,
                "queue.buffering.max.messages": 500_000,
                "transaction.timeout.ms": 60_000,
                "error_cb": self.fatal,
            }
        )
        with self._calling("init_transactions", 30):
            self.producer.init_transactions(30)
        self.consumer.subscribe([config.topic(TRANSACTIONS_INGEST.name)], on_revoke=self._on_revoke)

    def _reconnect(self) -> None:
        """Replace clients a fatal error made unusable (see FatalWatch). The new producer's
        init_transactions aborts any transaction the old one left open, and the new member
        reads on from the committed offsets; batches read again find their own dedup claims,
        so nothing is lost or doubled."""
        log.warning("replacing the Kafka clients after a fatal error: %s", self.fatal.error)
        self._pending = None
        with contextlib.suppress(Exception):  # none open: the producer says so, and that is all
            self.producer.abort_transaction(10)
        try:
            self.consumer.close()
        except Exception as error:  # KafkaException: the fenced member cannot leave cleanly
            log.info("closing the fenced consumer: %s", error)
        self._connect()

    def _calling(self, what: str, timeout_s: float) -> contextlib.AbstractContextManager:
        """Watched when a watchdog is set (a worker process), else nothing: an embedded
        validator must not exec its host."""
        if self.watchdog is None:
            return contextlib.nullcontext()
        return self.watchdog.calling(what, timeout_s)

    def stop(self) -> None:
        self._stop.set()

    def run(self, idle_exit_s: float | None = None) -> None:
        """Process batches until stop() (or SIGTERM), or after `idle_exit_s` without input.

        Two batches in flight: while batch N is written and committed, batch N+1 is checked
        and deduplicated on a helper thread, so Redis and the broker work at the same time
        (both release the GIL while they wait). Claims stay in consumption order, and a crash
        replays both batches, whose claims then hold their own positions. A rebalance commits
        the staged batch before its partitions go (`_on_revoke`), so no new owner redoes it.
        """
        from confluent_kafka import KafkaException

        last_input = time.monotonic()
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="stage") as stager:
                while not self._stop.is_set():
                    if self.fatal.error is not None:
                        self._reconnect()
                    try:
                        messages = self._consume()
                        staged = stager.submit(self._stage, messages) if messages else None
                        self._commit_pending()
                    except KafkaException as error:
                        self.fatal(error.args[0])  # a fatal error may surface here first
                        if self.fatal.error is None:
                            raise
                        continue  # the batches in flight are read again after reconnecting
                    self._pending = staged
                    if messages:
                        last_input = time.monotonic()
                    elif idle_exit_s is not None and time.monotonic() - last_input > idle_exit_s:
                        break
                self._commit_pending()
        finally:
            self.consumer.close()

    def _consume(self) -> list[Any]:
        """The next batch, without messages of partitions a rebalance inside the consumer's
        calls took away: their new owner reads them from the last committed offset."""
        messages = consume_ready(self.consumer, self.config.batch_size, timeout=0.2)
        owned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        return [
            m
            for m in messages
            if not self._is_partition_event(m) and (m.topic(), m.partition()) in owned
        ]

    def _commit_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._commit(pending.result())

    def _on_revoke(self, _consumer: Any, _partitions: list[Any]) -> None:
        """Runs inside consume() before partitions move: finish the staged batch while this
        member's generation still owns them."""
        self._commit_pending()

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
        return self._commit(self._stage(messages))

    def _stage(self, messages: list[Any]) -> Staged:
        values = [m.value() for m in messages]
        verdicts = self._check(values, int(time.time() * 1000))
        return Staged(messages, values, verdicts, self._dedup(messages, verdicts))

    def _commit(self, batch: Staged) -> Counter[tuple[str, str]]:
        while True:
            try:
                counts = self._write(batch)
                break
            except Exception as error:  # KafkaException: abort, rewind, retry the same batch
                if self._member_lost(error):
                    self.fatal.record(error.args[0])
                if not self._recoverable(error) or self.fatal.error is not None:
                    raise
                log.warning("transaction failed (%s); retrying the batch", error)
                with self._calling("abort_transaction", 30):
                    self.producer.abort_transaction(30)
        self.metrics.record_batch(counts)
        return counts

    def _check(self, values: list[bytes | None], now_ms: int) -> list[RawVerdict]:
        """One native call for the batch; should it fail, message by message so that a bug
        dead-letters only the message that triggers it."""
        rules = self.config.rules
        try:
            return rules.check_batch(values, now_ms)
        except Exception:
            log.exception("batch check failed; checking message by message")
        verdicts = []
        for value in values:
            try:
                verdicts.extend(rules.check_batch([value], now_ms))
            except Exception as error:  # a bug must not lose the message: dead-letter it
                detail = f"{type(error).__name__}: {error}"
                verdicts.append((None, None, (PROCESSING_ERRORS, "validator_error", detail), None))
        return verdicts

    def _dedup(self, messages: list[Any], verdicts: list[RawVerdict]) -> dict[int, Rejection]:
        """Repeats of a transaction_id within the window, by batch index; replays of our own
        are not repeats.

        One script call per batch: SET NX EX `dedup:{transaction_id}` to the message's
        position (partition:offset); keys already taken come back with the position holding them.
        """
        candidates = [i for i, (_, _, rejection, _) in enumerate(verdicts) if rejection is None]
        if not candidates:
            return {}
        window = self.config.dedup_window_s
        positions = [f"{messages[i].partition()}:{messages[i].offset()}" for i in candidates]
        claims = "".join(
            [f"{verdicts[i][0]}\t{at}\n" for i, at in zip(candidates, positions, strict=True)]
        )
        taken = self._claim(args=[claims, window])
        duplicates = {}
        for line, holder in zip(taken[::2], taken[1::2], strict=True):
            i, holder = candidates[line - 1], holder.decode()
            if holder != positions[line - 1]:
                seen = f"already seen at {holder} within {window}s"
                detail = f"transaction_id {verdicts[i][0]} {seen}"
                duplicates[i] = Rejection(DUPLICATES, "duplicate", detail)
        return duplicates

    def _write(self, batch: Staged) -> Counter[tuple[str, str]]:
        raw_topic = self.config.topic(TRANSACTIONS_RAW.name)
        rejected_at = int(time.time() * 1000)
        valid = 0
        counts: Counter[tuple[str, str]] = Counter()
        self.producer.begin_transaction()
        for i, (transaction_id, user_id, rejected, event_ms) in enumerate(batch.verdicts):
            rejection = batch.duplicates.get(i) or (rejected and Rejection(*rejected))
            if rejection is None:
                # The payload's event time (checked against the skew bounds) stamps the raw
                # record; the producer's record timestamp is not trusted for it.
                produce(self.producer, raw_topic, user_id, batch.values[i], event_ms)
                valid += 1
                continue
            self._dead_letter(batch.messages[i], transaction_id, rejection, rejected_at)
            counts[(rejection.dlq, rejection.reason)] += 1
        if valid:
            counts[(TRANSACTIONS_RAW.name, VALID)] = valid
        with self._calling("send_offsets_to_transaction", 30):
            self.producer.send_offsets_to_transaction(
                self._next_offsets(batch.messages), self.consumer.consumer_group_metadata(), 30
            )
        with self._calling("commit_transaction", 60):
            self.producer.commit_transaction(60)
        return counts

    def _dead_letter(
        self, m: Any, transaction_id: str | None, rejection: Rejection, rejected_at: int
    ) -> None:
        limit = self.config.rules.max_message_bytes
        keep = self._keep_original if self.config.lake_root else None
        key, envelope = dead_letter(m, transaction_id, rejection, rejected_at, limit, keep)
        produce(self.producer, self.config.topic(rejection.dlq), key, envelope)

    def _keep_original(self, digest: str, value: bytes) -> str:
        """An original too large for its envelope, written whole (card numbers masked) to the
        lake under its hash: a replayed batch writes the same file again, nothing else."""
        from fraud_platform.lake import write_atomically
        from fraud_platform.resources import LakeResource

        filesystem, base = LakeResource(root=self.config.lake_root).filesystem()
        path = f"{ORIGINALS}/{digest}.bin"
        write_atomically(filesystem, f"{base}/{path}", value)
        return f"lake/{path}"

    @staticmethod
    def _next_offsets(messages: list[Any]) -> list[Any]:
        """Per partition, the offset after the batch's last message (consumed in order; one
        topic)."""
        from confluent_kafka import TopicPartition

        topic = messages[0].topic()
        last = {m.partition(): m.offset() for m in messages}
        return [TopicPartition(topic, p, offset + 1) for p, offset in last.items()]

    @staticmethod
    def _member_lost(error: Exception) -> bool:
        """The group refused the batch's offsets because this member is no longer the one
        it knows: retrying cannot succeed, only a new member can (see FatalWatch)."""
        from confluent_kafka import KafkaError

        kafka_error = error.args[0] if error.args else None
        return isinstance(kafka_error, KafkaError) and kafka_error.code() in (
            KafkaError.FENCED_INSTANCE_ID,
            KafkaError.UNKNOWN_MEMBER_ID,
            KafkaError.ILLEGAL_GENERATION,
        )

    @staticmethod
    def _recoverable(error: Exception) -> bool:
        kafka_error = error.args[0] if error.args else None
        return bool(
            kafka_error is not None
            and hasattr(kafka_error, "txn_requires_abort")
            and (kafka_error.txn_requires_abort() or kafka_error.retriable())
        )


def dead_letter(
    m: Any,
    transaction_id: str | None,
    rejection: Rejection,
    rejected_at: int,
    limit: int = 16 * 1024,
    keep: Callable[[str, bytes], str] | None = None,
) -> tuple[bytes | str | None, bytes]:
    """The (key, value) a rejected message is dead-lettered as. The envelope keeps the
    original bytes, the reason and where it came from; any card number is masked wherever it
    appears (key, value, the transaction id). An original over `limit` bytes keeps its first
    `limit` bytes in the envelope (which must stay under the producer's 1 MB), the rest is
    named by its hash and kept whole by `keep`: one message can never fail the write."""
    transaction_id = mask_text(transaction_id)
    value, detail = mask_pans_in_bytes(m.value()), rejection.detail
    original_key = mask_pans_in_bytes(m.key())
    original_key = original_key[:limit] if original_key else original_key
    if value is not None and len(value) > limit:
        digest = hashlib.sha256(value).hexdigest()
        where = f"kept whole at {keep(digest, value)}" if keep else "not kept"
        detail += f"; the original ({len(value):,} bytes, sha256 {digest}) is {where}"
        value = value[:limit]
    envelope = DEAD_LETTER.encode(
        {
            "original_key": original_key,
            "original_value": value,
            "reason": rejection.reason,
            "detail": detail,
            "source_topic": m.topic(),
            "source_partition": m.partition(),
            "source_offset": m.offset(),
            "source_timestamp": m.timestamp()[1] if m.timestamp()[0] else None,
            "rejected_at": rejected_at,
            "transaction_id": transaction_id,
        }
    )
    key = transaction_id.encode() if transaction_id is not None else original_key
    return key, envelope


def run_worker(config: ValidatorConfig, index: int) -> None:
    """One validator process; its own transactional id, its share of the partitions."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = replace(
        config,
        transactional_id=f"{config.instance}-w{index}",
        metrics_port=config.metrics_port + index if config.metrics_port else 0,
    )
    argv = [sys.executable, "-m", "fraud_platform.ingestion.validator", "--worker", str(index)]
    validator = Validator(config, watchdog=CallWatchdog(argv))
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
    if sys.argv[1:2] == ["--worker"]:  # a worker restarting itself in place (CallWatchdog)
        run_worker(ValidatorConfig.from_env(), int(sys.argv[2]))
    else:
        main()
