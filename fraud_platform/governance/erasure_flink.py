"""Flink's keyed state forgets an erased user.

Kafka cannot unsay what the jobs have read, and a checkpoint cannot be edited, so the jobs
are told: an erasure request on `fraud-erasures` (the user, the user's transactions and
the merchants they were made at) makes the enrichment and aggregates jobs clear the user's
keyed state and drop those transactions from each merchant's (streaming/fraud_streaming/
jobs.py). RocksDB still keeps the deleted entries in its files until a compaction, and
checkpoints carry those files, so once a job has read the request it is restarted from a
canonical savepoint (written from the live entries alone) and the step waits, with a
deadline, for the new run's first checkpoint without the user's bytes; the instance's older
checkpoints and savepoints that still hold them are superseded and deleted. A job that is
not running while its restore point holds the user cannot forget: the step fails naming
it, before anything is sent, and the erasure resumes once the job runs again
(`fraud-platform stream restart`). With no job running and no restore point holding the
user there is nothing to erase in Flink.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from fraud_platform.config import Settings
from fraud_platform.governance.erasure_verify import file_holds
from fraud_platform.streaming.control import FlinkJobs, restart, runs
from fraud_platform.streaming.jobs import AGGREGATES, DEFAULT_DEPLOYMENT, ENRICHMENT, Deployment
from fraud_platform.topics import FRAUD_ERASURES, topic_name

FORGETTING_JOBS = (ENRICHMENT, AGGREGATES)


class StateNotErased(RuntimeError):
    """A job's state still holds the user (or could not be told to forget it)."""


def request(user_id: str, transactions: list[str], merchants: list[str]) -> bytes:
    """The request the jobs read: plain JSON, their code imports nothing of the platform."""
    body = {"user_id": user_id, "transaction_ids": transactions, "merchants": merchants}
    return json.dumps(body).encode()


def publish(settings: Settings, topic: str, message: bytes, user_id: str) -> None:
    from confluent_kafka import Producer

    failures: list[str] = []

    def delivered(error, _message) -> None:
        if error:
            failures.append(str(error))

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 3,
                         "enable.idempotence": True, "message.timeout.ms": 30_000})  # fmt: skip
    producer.produce(topic, message, user_id.encode(), on_delivery=delivered)
    if producer.flush(35) or failures:
        reason = failures[0] if failures else "not delivered within 35 s"
        raise StateNotErased(f"the erasure request did not reach Kafka topic {topic}: {reason}")


def directory_holds(directory: Path, needle: bytes) -> bool:
    """Whether any file under `directory` holds the bytes."""
    return any(file_holds(p, needle) for p in directory.rglob("*") if p.is_file())


def _restore_points(settings: Settings, job_ids: list[str], savepoint: str) -> list[Path]:
    """Every checkpoint and savepoint directory of an instance's runs: besides the one the
    registry names, each earlier stop's savepoint, which Flink names after the job's id."""
    flink = settings.home / "flink"
    found = [p for j in job_ids for p in (flink / "checkpoints" / j).glob("chk-*") if p.is_dir()]
    found += [p for j in job_ids for p in (flink / "savepoints").glob(f"savepoint-{j[:6]}-*")]
    saved = Path(savepoint.removeprefix("file:")) if savepoint else None
    if saved and saved.is_dir() and saved not in found:
        found.append(saved)
    return [p for p in found if p.is_dir()]


def _wait(condition, timeout: float, failure: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(1)
    raise StateNotErased(f"{failure} after {timeout:.0f}s")


def _clean_checkpoint(flink: FlinkJobs, job_id: str, needle: bytes, timeout: float) -> Path:
    """The job's newest completed checkpoint, once there is one without the user."""

    def clean() -> Path | None:
        newest = Path((flink.status(job_id).last_checkpoint_path or "").removeprefix("file:"))
        return newest if newest.is_dir() and not directory_holds(newest, needle) else None

    return _wait(clean, timeout, f"Flink job {job_id} has no checkpoint without the user")


def _running(flink: FlinkJobs, name: str) -> str | None:
    """The instance's running job id; None when none runs or no Flink cluster answers."""
    import httpx

    try:
        found = flink.find(name, {"RUNNING"})
    except httpx.HTTPError:
        return None
    return found[0]["jid"] if found else None


def _rebuilt(settings: Settings, flink: FlinkJobs, job, deployment: Deployment, job_id: str,
             seen: float, timeout: float) -> str:  # fmt: skip
    """Once the job has read the request (its `erasures` counter passed `seen`), restart it
    from a canonical savepoint: RocksDB keeps a deleted entry in its files until a
    compaction, and checkpoints upload those files, so only state written anew from the
    live entries alone lets go of the user's bytes. Returns the new job's id."""
    _wait(lambda: flink.metric(job_id, "erasures") > seen, timeout,
          f"Flink job {job_id} has not read the erasure request")  # fmt: skip
    return restart(settings, job, deployment)[0]


def _held(settings: Settings, job, deployment: Deployment, needle: bytes) -> list[Path]:
    """The instance's checkpoints and savepoints that hold the bytes."""
    points = _restore_points(settings, *runs(settings, job, deployment))
    return [p for p in points if directory_holds(p, needle)]


def forget(settings: Settings, user_id: str, transactions: list[str], merchants: list[str],
           deployment: Deployment = DEFAULT_DEPLOYMENT, timeout: float = 180.0) -> int:  # fmt: skip
    """Tell the running jobs, rebuild their state without the user, delete the superseded
    copies; returns how many checkpoint or savepoint directories were deleted. With no job
    running and no restore point holding the user, there is nothing to erase."""
    flink, needle, deleted = FlinkJobs(settings), user_id.encode(), 0
    running = {job: _running(flink, deployment.instance_name(job)) for job in FORGETTING_JOBS}
    for job in (job for job, job_id in running.items() if not job_id):
        if held := _held(settings, job, deployment, needle):
            raise StateNotErased(
                f"the {deployment.instance_name(job)} job is not running and its restore "
                f"point {held[-1]} holds the user: restart it (`fraud-platform stream "
                f"restart {job.name}`), then resume the erasure"
            )
    running = {job: job_id for job, job_id in running.items() if job_id}
    if not running:
        return 0
    seen = {job: flink.metric(job_id, "erasures") for job, job_id in running.items()}
    topic = topic_name(FRAUD_ERASURES.name, deployment.topic_prefix)
    publish(settings, topic, request(user_id, transactions, merchants), user_id)
    for job, job_id in running.items():
        job_id = _rebuilt(settings, flink, job, deployment, job_id, seen[job], timeout)
        kept = _clean_checkpoint(flink, job_id, needle, timeout)
        holding = [p for p in _held(settings, job, deployment, needle) if p != kept]
        for path in holding:
            shutil.rmtree(path, ignore_errors=True)
        deleted += len(holding)
    return deleted


def holding_files(settings: Settings, user_id: str,
                  deployment: Deployment = DEFAULT_DEPLOYMENT) -> int:  # fmt: skip
    """How many of the jobs' checkpoints and savepoints hold the user (the plan's count)."""
    return sum(len(_held(settings, job, deployment, user_id.encode())) for job in FORGETTING_JOBS)
