"""The streaming jobs: what each reads and feeds, and the spec it is deployed with.

The jobs' code (streaming/fraud_streaming) runs in PyFlink's own environment and imports
nothing from here; everything it needs from the platform (the compiled feature catalog, the
contracts, topic names, the Redis key layout, event-time settings) travels in its spec, a
JSON document written at deploy time. So the catalog, the contracts and the key layout stay
defined once, here, and a redeploy is how a catalog change reaches the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fraud_platform.config import Settings
from fraud_platform.contracts import DEAD_LETTER, ENRICHED_TRANSACTION, FRAUD_LABEL, TRANSACTION
from fraud_platform.contracts.registry import Contract, versions
from fraud_platform.features.catalog import WINDOWS_MS
from fraud_platform.features.online import PROFILE_KEYS, STREAM_WINDOWS
from fraud_platform.features.stream import enriched_feature_names, stream_features
from fraud_platform.lake import MERCHANTS, USERS
from fraud_platform.topics import (
    DLQ_PROCESSING_ERRORS,
    FRAUD_ERASURES,
    FRAUD_LABELS,
    QUALITY_STREAM_WINDOWS,
    TRANSACTIONS_ENRICHED,
    TRANSACTIONS_LATE,
    TRANSACTIONS_RAW,
    topic_name,
)

FEATURE_VERSION = "v2"  # v2: the label-delayed, merchant and pair features
MINUTE_MS = 60_000


@dataclass(frozen=True)
class StreamingJob:
    """A long-running Flink job of the platform."""

    name: str
    description: str
    reads: tuple[str, ...]  # topics
    writes: tuple[str, ...]  # topics and Redis key spaces
    redis_key_spaces: tuple[tuple[str, str], ...] = field(default=())  # (name, key pattern)
    parallelism: int = 1
    # PyFlink's Python execution mode: "process" runs the Python steps in worker processes
    # fed in bundles; "thread" runs them inside the task manager (one interpreter, one GIL
    # for every thread-mode subtask there), record by record.
    execution_mode: str = "process"

    @property
    def pipeline_name(self) -> str:
        return f"fraud-{self.name}"


ENRICHMENT = StreamingJob(
    "enrichment",
    "Job 1: every catalog feature of each transaction (row, user and merchant windows "
    "before it, label-delayed merchant and card fraud history from fraud-labels, amount "
    "deviation) from transactions-raw to transactions-enriched, exactly-once.",
    reads=(TRANSACTIONS_RAW.name, FRAUD_LABELS.name, FRAUD_ERASURES.name),
    writes=(TRANSACTIONS_ENRICHED.name, DLQ_PROCESSING_ERRORS.name),
    # The hot path. In thread mode a record reaches its Python step without the bundling
    # and the worker round trips of process mode: the bare engine's P50 at 1,000/s falls
    # from 74-91 ms to 10-14 ms. Subtasks in thread mode share the task manager's one
    # interpreter, and a second one only fights the first for its lock (a backlog with
    # three days of history drains at 2,000/s with two, 2,700/s with one).
    parallelism=1,
    execution_mode="thread",
)
AGGREGATES = StreamingJob(
    "aggregates",
    "Job 2: per-user 1h/24h/7d/30d and per-merchant 24h/7d/30d sliding windows in event "
    "time, written to the Redis feature store; events beyond the lateness go to "
    "transactions-late.",
    reads=(TRANSACTIONS_RAW.name, FRAUD_ERASURES.name),
    writes=(TRANSACTIONS_LATE.name, DLQ_PROCESSING_ERRORS.name),
    redis_key_spaces=(
        ("user_windows", "user:{id}:agg:{window}"),
        ("merchant_windows", PROFILE_KEYS["merchant"].format("{id}")),
    ),
)
MONITORING = StreamingJob(
    "monitoring",
    "Job 3: Layer-2 monitoring of transactions-enriched per event-time minute (volume, "
    "missing shares, PSI against the lake's last week, event-to-processing lag, schema "
    "changes) into quality-stream-windows, validated by the streaming suite.",
    reads=(TRANSACTIONS_ENRICHED.name,),
    writes=(QUALITY_STREAM_WINDOWS.name,),
)
JOBS = {job.name: job for job in (ENRICHMENT, AGGREGATES, MONITORING)}
# Not a platform job: the bare engine the enrichment benchmark measures itself against.
PASSTHROUGH = StreamingJob(
    "passthrough",
    "The enrichment job's source, keying, one Python step and exactly-once sink, forwarding "
    "each raw message untouched.",
    reads=(TRANSACTIONS_RAW.name,),
    writes=(TRANSACTIONS_ENRICHED.name,),
    parallelism=ENRICHMENT.parallelism,
    execution_mode=ENRICHMENT.execution_mode,
)


@dataclass(frozen=True)
class EventTime:
    """The design's event-time rules: a 5-minute watermark and 5 minutes of lateness."""

    watermark_ms: int = 5 * MINUTE_MS
    lateness_ms: int = 5 * MINUTE_MS
    # A partition quiet this long stops holding the watermark back. It is long because a
    # split that is merely waiting its turn (the reader busy on another partition's backlog,
    # a starved worker) looks quiet too, and its events then look late: on time events
    # wrongly sent to the late topic cost more than windows closing a minute later.
    idleness_ms: int = 60_000


@dataclass(frozen=True)
class Deployment:
    """Where a job instance reads and writes: the platform's defaults, or a test's or a
    tenant's isolated topics (prefix), Redis keys (key_prefix) and lake."""

    topic_prefix: str = ""
    key_prefix: str = ""
    lake_root: str = ""
    checkpoint_interval: str = ""
    event_time: EventTime = field(default_factory=EventTime)
    restore_from: str = ""
    parallelism: int = 0  # 0: the job's own
    label_delay_days: int | None = None  # None: the platform's (FRAUD_LABEL_DELAY_DAYS)

    def group(self, job: StreamingJob) -> str:
        return f"{self.topic_prefix}{job.pipeline_name}"

    def instance_name(self, job: StreamingJob) -> str:
        """The Flink job name of this instance (how the controls find it)."""
        return job.pipeline_name + (f" [{self.topic_prefix}]" if self.topic_prefix else "")


DEFAULT_DEPLOYMENT = Deployment()


def contract_spec(contract: Contract) -> dict[str, Any]:
    """A contract as the jobs get it: its id and schema, and every earlier version's (by id),
    so a message from a producer still on an older version is read as this one."""
    older = {c.schema_id: c.wire_schema for c in versions(contract.name)
             if c.version < contract.version}  # fmt: skip
    return {"id": contract.schema_id, "schema": contract.wire_schema, "older": older}


def _reference_uri(lake_root: str, path: str) -> str:
    if lake_root.startswith("s3://"):
        return f"{lake_root.rstrip('/')}/{path}"
    from pathlib import Path

    return (Path(lake_root).resolve() / path).as_uri()


def monitoring_spec(settings: Settings, lake_root: str) -> dict[str, Any]:
    """What job 3 measures each window against: the catalog's enriched features, the
    lake's last week as the baseline, the spike rule's thresholds."""
    from fraud_platform.quality.streaming import SUITE, baseline
    from fraud_platform.quality.suites import check_named
    from fraud_platform.resources import LakeResource

    parameters = check_named(SUITE).resolved_parameters()
    return {
        "window_ms": MINUTE_MS,
        "features": enriched_feature_names(),
        **baseline(LakeResource(root=lake_root, s3_endpoint_url=settings.s3_endpoint_url)),
        "spike_amount": parameters["spike_amount"],
        "spike_average": parameters["spike_average"],
    }


def job_spec(settings: Settings, job: StreamingJob, deployment: Deployment) -> dict[str, Any]:
    """The JSON document a job is submitted with (see streaming/fraud_streaming/submit.py)."""
    lake = deployment.lake_root or settings.lake_root
    topics = {
        "raw": TRANSACTIONS_RAW.name,
        "labels": FRAUD_LABELS.name,
        "enriched": TRANSACTIONS_ENRICHED.name,
        "late": TRANSACTIONS_LATE.name,
        "dead_letters": DLQ_PROCESSING_ERRORS.name,
        "windows": QUALITY_STREAM_WINDOWS.name,
        "erasures": FRAUD_ERASURES.name,
    }
    prefix = deployment.key_prefix
    return {
        "job": job.name,
        "name": deployment.instance_name(job),
        "group": deployment.group(job),
        "kafka": {"bootstrap": settings.kafka_bootstrap, "transaction_timeout_ms": 600_000},
        "topics": {k: topic_name(v, deployment.topic_prefix) for k, v in topics.items()},
        "contracts": {
            "transaction": contract_spec(TRANSACTION),
            "enriched": contract_spec(ENRICHED_TRANSACTION),
            "label": contract_spec(FRAUD_LABEL),
            "dead_letter": contract_spec(DEAD_LETTER),
        },
        "features": stream_features(
            settings.label_delay_days
            if deployment.label_delay_days is None
            else deployment.label_delay_days
        ),
        "feature_version": FEATURE_VERSION,
        "reference": {
            "users": _reference_uri(lake, USERS.path),
            "merchants": _reference_uri(lake, MERCHANTS.path),
        },
        "redis": {"url": settings.redis_url, "batch": 500, "flush_ms": 20},
        "keys": {
            "user_window": prefix + "user:{}:agg:{}",
            "merchant": prefix + PROFILE_KEYS["merchant"],
        },
        "windows_ms": {w: WINDOWS_MS[w] for w in STREAM_WINDOWS},
        "event_time": vars(deployment.event_time),
        "monitoring": monitoring_spec(settings, lake) if job is MONITORING else None,
        "state_cache_keys": 200_000,  # histories the Python workers keep in memory
        "restore_from": deployment.restore_from,
        "flink": {
            "rest_url": settings.flink_rest_url,
            "settings": {
                "parallelism.default": deployment.parallelism or job.parallelism,
                "execution.checkpointing.interval": deployment.checkpoint_interval
                or settings.flink_checkpoint_interval,
                # Network buffers leave at least every 5 ms (100 ms by default). A Python
                # bundle (process mode) closes after 50 ms: each close costs round trips to
                # the JVM (the keyed state's commit), and at 20 ms those ate the capacity.
                "execution.buffer-timeout.interval": "5 ms",
                "python.execution-mode": job.execution_mode,
                "python.fn-execution.bundle.size": 1000,
                "python.fn-execution.bundle.time": 50,
            },
        },
    }
