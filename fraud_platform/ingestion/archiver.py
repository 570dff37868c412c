"""The lake archiver: a Kafka topic -> Parquet partitions in the lake, exactly once.

The lake, not Kafka, holds the archiver's progress. A flush, for each Kafka partition P with
buffered records in offsets [a, b]:
  1. writes an intent `_state/archiver/{topic}/p{P}.pending.json` naming the files it will write,
  2. writes the files, `.../date=D[/hour=H]/part-p{P}-{a}-{b}.parquet`,
  3. writes `p{P}.json` = {"next_offset": b + 1}, then removes the intent.
On (re)start, a leftover intent means a flush died midway: its files are deleted and the
consumer resumes at `next_offset`. So a crash anywhere neither skips nor repeats a record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from fraud_platform.contracts import (
    DEAD_LETTER,
    FRAUD_LABEL,
    MODEL_PREDICTION,
    TRANSACTION,
    Contract,
    ContractError,
)
from fraud_platform.lake import (
    LABELS,
    PREDICTIONS,
    QUARANTINE,
    RAW_TRANSACTIONS,
    LakeTable,
    dead_letter_row,
    dead_letter_table,
    label_row,
    parquet_bytes,
    prediction_row,
    quarantine_row,
    read_json,
    transaction_row,
    write_atomically,
)
from fraud_platform.messaging import FatalWatch
from fraud_platform.topics import (
    DLQ_TOPICS,
    FRAUD_LABELS,
    MODEL_PREDICTIONS,
    TRANSACTIONS_RAW,
    topic_name,
)

log = logging.getLogger("fraud_platform.archiver")


@dataclass(frozen=True)
class ArchiveRoute:
    """Which contract a topic carries and which lake table it lands in."""

    topic: str
    contract: Contract
    table: LakeTable
    to_row: Callable[[dict[str, Any]], dict[str, Any]]


ROUTES = {
    r.topic: r
    for r in (
        ArchiveRoute(TRANSACTIONS_RAW.name, TRANSACTION, RAW_TRANSACTIONS, transaction_row),
        ArchiveRoute(FRAUD_LABELS.name, FRAUD_LABEL, LABELS, label_row),
        ArchiveRoute(MODEL_PREDICTIONS.name, MODEL_PREDICTION, PREDICTIONS, prediction_row),
        *(
            ArchiveRoute(t.name, DEAD_LETTER, dead_letter_table(t.name), dead_letter_row)
            for t in DLQ_TOPICS
        ),
    )
}


class Archiver:
    def __init__(
        self,
        route: ArchiveRoute,
        bootstrap: str,
        lake: Any,  # fraud_platform.resources.LakeResource
        topic_prefix: str = "",
        flush_rows: int = 50_000,
        flush_seconds: float = 10.0,
    ) -> None:
        self.route = route
        self.topic = topic_name(route.topic, topic_prefix)
        self.fs, self.root = lake.filesystem()
        self.state_dir = f"{self.root}/_state/archiver/{self.topic}"
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.buffer: dict[int, list[Any]] = defaultdict(list)  # Kafka partition -> messages
        self.buffered = 0
        self.oldest = 0.0
        self.rows_written = 0
        self._stop = threading.Event()
        self.bootstrap = bootstrap
        self._connect()

    def _connect(self) -> None:
        from confluent_kafka import Consumer

        self.fatal = FatalWatch()
        self.consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"lake-archiver-{self.topic}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "group.instance.id": f"lake-archiver-{self.topic}",
                "session.timeout.ms": 10_000,
                "error_cb": self.fatal,
            }
        )
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _reconnect(self) -> None:
        """Replace a consumer a fatal error made unusable (see FatalWatch). What is buffered
        is flushed first; the new member resumes from the progress kept in the lake."""
        log.warning(
            "replacing the %s consumer after a fatal error: %s", self.topic, self.fatal.error
        )
        self.flush()
        try:
            self.consumer.close()
        except Exception as error:  # KafkaException: the fenced member cannot leave cleanly
            log.info("closing the fenced consumer: %s", error)
        self._connect()

    # -- progress kept in the lake -------------------------------------------------------
    def _state_path(self, partition: int, pending: bool = False) -> str:
        return f"{self.state_dir}/p{partition}{'.pending' if pending else ''}.json"

    def recover(self, partition: int) -> int | None:
        """Undo a half-done flush of this partition; return the offset to resume from."""
        intent = read_json(self.fs, self._state_path(partition, pending=True))
        if intent is not None:
            for path in intent["files"]:
                if self._exists(path):
                    self.fs.delete_file(path)
            self.fs.delete_file(self._state_path(partition, pending=True))
            log.warning("rolled back an unfinished flush of %s p%d", self.topic, partition)
        state = read_json(self.fs, self._state_path(partition))
        return None if state is None else state["next_offset"]

    def _exists(self, path: str) -> bool:
        from pyarrow.fs import FileType

        return self.fs.get_file_info(path).type != FileType.NotFound

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING

        for tp in partitions:
            resume = self.recover(tp.partition)
            tp.offset = OFFSET_BEGINNING if resume is None else resume
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.flush()

    # -- the loop ----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, idle_exit_s: float | None = None) -> None:
        last_input = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.fatal.error is not None:
                    self._reconnect()
                messages = self.consumer.consume(5000, timeout=0.5)
                for message in messages:
                    if message.error() is not None:
                        self.fatal(message.error())  # the rest: EOF, transient (retried)
                        continue
                    if not self.buffered:
                        self.oldest = time.monotonic()
                    self.buffer[message.partition()].append(message)
                    self.buffered += 1
                if messages:
                    last_input = time.monotonic()
                if self.buffered and (
                    self.buffered >= self.flush_rows
                    or time.monotonic() - self.oldest >= self.flush_seconds
                ):
                    self.flush()
                idle = time.monotonic() - last_input
                if not messages and idle_exit_s is not None and idle > idle_exit_s:
                    break
            self.flush()
        finally:
            self.consumer.close()

    def flush(self) -> None:
        for partition, messages in list(self.buffer.items()):
            if messages:
                self._flush_partition(partition, messages)
        self.buffer.clear()
        self.buffered = 0

    def _flush_partition(self, partition: int, messages: list[Any]) -> None:
        first, last = messages[0].offset(), messages[-1].offset()
        table = self.route.table
        by_dir: dict[str, list[dict[str, Any]]] = defaultdict(list)
        quarantined: list[dict[str, Any]] = []
        for message in messages:
            try:
                row = self.route.to_row(self.route.contract.decode(message.value()))
                directory = table.partition_dir(row[table.time_column])
            except (ContractError, TypeError) as error:  # TypeError: no time to partition by
                quarantined.append(quarantine_row(message, f"{type(error).__name__}: {error}"))
                continue
            row["source_partition"], row["source_offset"] = partition, message.offset()
            by_dir[directory].append(row)
        name = f"part-p{partition}-{first:012d}-{last:012d}.parquet"
        files = {
            f"{self.root}/{directory}/{name}": pa.Table.from_pylist(rows, schema=table.schema)
            for directory, rows in by_dir.items()
        }
        if quarantined:
            # Never dropped, never blocking: what does not decode is kept with its reason.
            path = f"{self.root}/{QUARANTINE.path}/topic={self.topic}/{name}"
            files[path] = pa.Table.from_pylist(quarantined, schema=QUARANTINE.schema)
            log.warning("%d undecodable messages of %s quarantined", len(quarantined), self.topic)
        intent = {"files": list(files), "next_offset": last + 1}
        write_atomically(
            self.fs, self._state_path(partition, pending=True), json.dumps(intent).encode()
        )
        for path, data in files.items():
            write_atomically(self.fs, path, parquet_bytes(data))
        write_atomically(
            self.fs, self._state_path(partition), json.dumps({"next_offset": last + 1}).encode()
        )
        self.fs.delete_file(self._state_path(partition, pending=True))
        self.rows_written += len(messages)
        self._commit_for_monitoring(partition, last + 1)

    def _commit_for_monitoring(self, partition: int, next_offset: int) -> None:
        """Kafka's committed offset only shows lag; the lake state is what resumes."""
        from confluent_kafka import KafkaException, TopicPartition

        with contextlib.suppress(KafkaException):
            self.consumer.commit(
                offsets=[TopicPartition(self.topic, partition, next_offset)], asynchronous=True
            )


def main(topics: list[str]) -> None:
    """Archive the topics (one consumer thread each) until SIGTERM/SIGINT.

    While every archiver runs, the file named by FRAUD_ARCHIVER_HEARTBEAT (if set) is touched
    every two seconds: the stack's health check.
    """
    import os
    from pathlib import Path

    from fraud_platform.config import Settings
    from fraud_platform.resources import build_resources

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    lake = build_resources(settings)["lake"]
    archivers = [
        Archiver(
            ROUTES[topic],
            settings.kafka_bootstrap,
            lake,
            topic_prefix=os.environ.get("FRAUD_TOPIC_PREFIX", ""),
            flush_rows=int(os.environ.get("FRAUD_ARCHIVER_FLUSH_ROWS", 50_000)),
            flush_seconds=float(os.environ.get("FRAUD_ARCHIVER_FLUSH_SECONDS", 10)),
        )
        for topic in topics
    ]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: [a.stop() for a in archivers])
    threads = [threading.Thread(target=a.run, name=a.topic) for a in archivers]
    for archiver, thread in zip(archivers, threads, strict=True):
        log.info(
            "archiving %s into %s/%s", archiver.topic, archiver.root, archiver.route.table.path
        )
        thread.start()
    heartbeat = os.environ.get("FRAUD_ARCHIVER_HEARTBEAT")
    while all(t.is_alive() for t in threads):
        if heartbeat:
            Path(heartbeat).touch()
        time.sleep(2)
    for archiver in archivers:
        archiver.stop()
    for thread in threads:
        thread.join()
