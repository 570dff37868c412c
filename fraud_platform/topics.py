"""The Kafka topics of the platform: the single place their names, keys and retention live.

Keys and retention follow the design document ("Topics Design" and "Dead-Letter Queue").
The design sizes a 5-broker cluster at 30 partitions and replication 3; on one machine the
partition count is scaled down (the high-rate topics keep several partitions so consumer
groups still parallelise) and replication is 1. FRAUD_KAFKA_PARTITIONS overrides the count
of the high-rate topics and FRAUD_KAFKA_REPLICATION the replication factor, for a cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

DAY_MS = 24 * 60 * 60 * 1000
# A user's erasure is due within 30 days (governance/gdpr.py) and Kafka cannot delete one
# record, so a topic holding personal data keeps a record at most that long: its retention
# plus one segment (a segment is deleted whole once its newest record is past retention).
ERASURE_DEADLINE_DAYS = 30
SEGMENT_DAYS = 1
PERSONAL_RETENTION_DAYS = ERASURE_DEADLINE_DAYS - SEGMENT_DAYS - 1  # a day's margin


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    retention_days: int
    high_rate: bool
    purpose: str

    @property
    def retention_ms(self) -> int:
        return self.retention_days * DAY_MS

    @property
    def partitions(self) -> int:
        high_rate = int(os.environ.get("FRAUD_KAFKA_PARTITIONS", "3"))
        return high_rate if self.high_rate else 1

    @property
    def configs(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "segment.ms": str(SEGMENT_DAYS * DAY_MS),
            "cleanup.policy": "delete",
        }

    @property
    def longest_kept_days(self) -> int:
        """How long a record can outlive its write: retention, then its segment's end."""
        return self.retention_days + SEGMENT_DAYS


def replication_factor() -> int:
    return int(os.environ.get("FRAUD_KAFKA_REPLICATION", "1"))


TRANSACTIONS_INGEST = Topic(
    "transactions-ingest",
    "user_id",
    7,
    True,
    "Front door: producers and the importer write here; only the Layer-1 validator reads it.",
)
TRANSACTIONS_RAW = Topic(
    "transactions-raw",
    "user_id",
    7,
    True,
    "Validated, deduplicated transactions, keyed by user to keep per-user order.",
)
TRANSACTIONS_ENRICHED = Topic(
    "transactions-enriched",
    "user_id",
    7,
    True,
    "Transactions with their real-time features, ready for the scorer.",
)
TRANSACTIONS_LATE = Topic(
    "transactions-late",
    "user_id",
    7,
    False,
    "Transactions that reached the aggregates job after its allowed lateness (still in the "
    "lake through transactions-raw; here to be counted and inspected).",
)
QUALITY_STREAM_WINDOWS = Topic(
    "quality-stream-windows",
    "window_start_ms",
    30,
    False,
    "One summary per event-time minute of transactions-enriched (volume, missing shares, "
    "distributions, lag, schema changes) from the monitoring job, validated by Layer 2.",
)
FRAUD_LABELS = Topic(
    "fraud-labels",
    "transaction_id",
    PERSONAL_RETENTION_DAYS,  # labels name the card (contract v2); the lake keeps them
    False,
    "Investigation outcomes (ground truth), sparse and late.",
)
MODEL_PREDICTIONS = Topic(
    "model-predictions",
    "transaction_id",
    PERSONAL_RETENTION_DAYS,
    True,
    "Every prediction of the scorer, for audit and monitoring.",
)
DLQ_SCHEMA_ERRORS = Topic(
    "dlq-schema-errors",
    "transaction_id",
    PERSONAL_RETENTION_DAYS,
    False,
    "Messages that are not valid Avro or break the schema's types and ranges.",
)
DLQ_DUPLICATES = Topic(
    "dlq-duplicates",
    "transaction_id",
    PERSONAL_RETENTION_DAYS,
    False,
    "Transactions seen again inside the 60-second dedup window.",
)
DLQ_INCOMPLETE = Topic(
    "dlq-incomplete",
    "transaction_id",
    PERSONAL_RETENTION_DAYS,
    False,
    "Transactions missing a required field.",
)
DLQ_PROCESSING_ERRORS = Topic(
    "dlq-processing-errors",
    "transaction_id",
    PERSONAL_RETENTION_DAYS,
    False,
    "Messages that failed downstream of validation.",
)

FRAUD_ERASURES = Topic(
    "fraud-erasures",
    "user_id",
    PERSONAL_RETENTION_DAYS,
    False,
    "Erasure requests the streaming jobs act on: each drops the user's keyed state and the "
    "user's transactions from the merchants' (governance/erasure_flink.py).",
)

ALL_TOPICS: tuple[Topic, ...] = (
    TRANSACTIONS_INGEST,
    TRANSACTIONS_RAW,
    TRANSACTIONS_ENRICHED,
    TRANSACTIONS_LATE,
    QUALITY_STREAM_WINDOWS,
    FRAUD_LABELS,
    MODEL_PREDICTIONS,
    DLQ_SCHEMA_ERRORS,
    DLQ_DUPLICATES,
    DLQ_INCOMPLETE,
    DLQ_PROCESSING_ERRORS,
    FRAUD_ERASURES,
)
DLQ_TOPICS: tuple[Topic, ...] = tuple(t for t in ALL_TOPICS if t.name.startswith("dlq-"))


def topic_name(catalog_name: str, prefix: str = "") -> str:
    """The real name of a catalog topic; a prefix isolates a tenant or a test run."""
    return f"{prefix}{catalog_name}"


def ensure_topics(bootstrap: str, timeout: float = 30.0, prefix: str = "") -> list[str]:
    """Create the missing topics and bring the retention of existing ones in line.

    Returns the names created. Idempotent, so `stack up` calls it on every start.
    """
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewTopic,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    existing = set(admin.list_topics(timeout=timeout).topics)
    catalog = [replace(t, name=topic_name(t.name, prefix)) for t in ALL_TOPICS]
    missing = [t for t in catalog if t.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(t.name, t.partitions, replication_factor(), config=t.configs)
                for t in missing
            ],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for future in futures.values():
            future.result(timeout=timeout)
    present = [t for t in catalog if t.name in existing]
    if present:
        resources = [
            ConfigResource(
                ConfigResource.Type.TOPIC,
                t.name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in t.configs.items()
                ],
            )
            for t in present
        ]
        for future in admin.incremental_alter_configs(resources).values():
            future.result(timeout=timeout)
    return [t.name for t in missing]
