"""Deploy, observe, stop and restart the streaming jobs on the Flink session cluster.

Jobs are found by their pipeline name through the REST API, so a restart of Dagster or of
the CLI never loses track of them. A stop takes a savepoint (the planned way down); a restart
resumes from the newest savepoint or retained checkpoint of the job's previous runs, so its
Kafka offsets, windows and exactly-once transactions carry on where they stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from fraud_platform.alerts import Alert
from fraud_platform.config import Settings
from fraud_platform.stack.flink import run_client
from fraud_platform.stack.process import StackError
from fraud_platform.streaming.jobs import DEFAULT_DEPLOYMENT, Deployment, StreamingJob, job_spec
from fraud_platform.topics import topic_name

NO_WATERMARK = -(2**63)  # Long.MIN_VALUE: no watermark yet

ACTIVE = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "RECONCILING", "FAILING"}


@dataclass(frozen=True)
class JobStatus:
    """What the cluster says about a job: the observation Dagster records."""

    job_id: str
    name: str
    state: str
    start_time_ms: int
    duration_ms: int
    restarts: int = 0
    last_checkpoint_ms: int | None = None
    last_checkpoint_path: str | None = None
    records_in: int = 0
    records_out: int = 0

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"


class FlinkJobs:
    """The Flink REST API, for the platform's jobs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rest = settings.flink_rest_url

    def _get(self, path: str) -> Any:
        response = httpx.get(f"{self.rest}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def find(self, name: str, states: set[str] = ACTIVE) -> list[dict]:
        """Jobs with this pipeline name in one of `states`, newest first."""
        jobs = self._get("/jobs/overview")["jobs"]
        found = [j for j in jobs if j["name"] == name and j["state"] in states]
        return sorted(found, key=lambda j: j["start-time"], reverse=True)

    def status(self, job_id: str) -> JobStatus:
        detail = self._get(f"/jobs/{job_id}")
        checkpoints = self._get(f"/jobs/{job_id}/checkpoints")
        latest = (checkpoints.get("latest") or {}).get("completed") or {}
        vertices = detail.get("vertices", [])
        sources = [v for v in vertices if v["name"].startswith("Source")]
        return JobStatus(
            job_id=job_id,
            name=detail["name"],
            state=detail["state"],
            start_time_ms=detail["start-time"],
            duration_ms=detail["duration"],
            restarts=self._restarts(job_id),
            last_checkpoint_ms=latest.get("latest_ack_timestamp"),
            last_checkpoint_path=latest.get("external_path"),
            records_in=sum(v["metrics"].get("read-records", 0) for v in vertices),
            records_out=sum(v["metrics"].get("write-records", 0) for v in sources),
        )

    def wait_running(self, job_id: str, timeout: float = 180.0) -> None:
        """Until the job and every one of its tasks run: a job is RUNNING while its tasks
        still deploy (Python workers start slowly), and a savepoint then fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            detail = self._get(f"/jobs/{job_id}")
            if detail["state"] in ("FAILED", "CANCELED", "FINISHED"):
                raise StackError(f"Flink job {job_id} is {detail['state']}")
            if detail["state"] == "RUNNING" and all(
                v["status"] == "RUNNING" for v in detail["vertices"]
            ):
                return
            time.sleep(0.5)
        raise StackError(f"Flink job {job_id}'s tasks are not all running after {timeout:.0f}s")

    def metric(self, job_id: str, name: str) -> float:
        """A metric of the job's operators (e.g. a Python counter such as late_events),
        summed over the vertices that report it."""
        total = 0.0
        for vertex in self._get(f"/jobs/{job_id}")["vertices"]:
            path = f"/jobs/{job_id}/vertices/{vertex['id']}/metrics"
            ids = [m["id"] for m in self._get(path) if m["id"].endswith(f".{name}")]
            if ids:
                values = self._get(f"{path}?get={','.join(ids)}")
                total += sum(float(v["value"]) for v in values)
        return total

    def input_watermark(self, job_id: str, operator: str) -> int | None:
        """The lowest input watermark (epoch ms) over the subtasks of the task that runs
        `operator`, None before the first. The REST API serves it from its metric store, which
        refreshes every few seconds."""
        for vertex in self._get(f"/jobs/{job_id}")["vertices"]:
            if operator in vertex["name"]:
                path = f"/jobs/{job_id}/vertices/{vertex['id']}/watermarks"
                values = [int(w["value"]) for w in self._get(path)]
                lowest = min(values, default=NO_WATERMARK)
                return None if lowest == NO_WATERMARK else lowest
        raise StackError(f"Flink job {job_id} has no operator named {operator!r}")

    def _restarts(self, job_id: str) -> int:
        metrics = self._get(f"/jobs/{job_id}/metrics?get=numRestarts")
        return int(float(metrics[0]["value"])) if metrics else 0

    def stop_with_savepoint(self, job_id: str, timeout: float = 120.0) -> str:
        """Stop a job with a savepoint in the cluster's savepoint dir; return its path."""
        response = httpx.post(
            f"{self.rest}/jobs/{job_id}/stop",
            json={"drain": False, "formatType": "CANONICAL"},
            timeout=10,
        )
        response.raise_for_status()
        trigger = response.json()["request-id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self._get(f"/jobs/{job_id}/savepoints/{trigger}")
            if status["status"]["id"] == "COMPLETED":
                operation = status["operation"]
                if "failure-cause" in operation:
                    cause = operation["failure-cause"].get("stack-trace", "").splitlines()
                    raise StackError(f"savepoint of {job_id} failed: {cause[0] if cause else ''}")
                return operation["location"]
            time.sleep(0.5)
        raise StackError(f"the savepoint of job {job_id} did not complete within {timeout:.0f}s")

    def cancel(self, job_id: str) -> None:
        httpx.patch(f"{self.rest}/jobs/{job_id}?mode=cancel", timeout=10).raise_for_status()


def consumer_lag(bootstrap: str, group: str, topic: str) -> int | None:
    """Messages of `topic` not yet committed by `group` (Flink commits its Kafka offsets on
    each checkpoint); None when the group has committed nothing yet."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, p) for p in metadata.partitions]
        committed = consumer.committed(partitions, timeout=10)
        if all(c.offset < 0 for c in committed):
            return None
        lag = 0
        for position in committed:
            _, high = consumer.get_watermark_offsets(position, timeout=10)
            lag += high - max(position.offset, 0)
        return lag
    finally:
        consumer.close()


def _registry(settings: Settings, job: StreamingJob, deployment: Deployment) -> Path:
    """Where the last known restore point of a job instance is noted."""
    name = f"{deployment.topic_prefix}{job.name}.json"
    return settings.home / "flink" / "jobs" / name


def _known(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _note(
    settings: Settings,
    job: StreamingJob,
    deployment: Deployment,
    job_id: str | None = None,
    **facts: Any,
) -> None:
    """Merge `facts` into the instance's registry entry; `job_id` joins its list of runs."""
    path = _registry(settings, job, deployment)
    path.parent.mkdir(parents=True, exist_ok=True)
    known = _known(path)
    if job_id:
        facts["job_ids"] = [*known.get("job_ids", []), job_id]
    path.write_text(json.dumps(known | facts, indent=2))


def runs(settings: Settings, job: StreamingJob, deployment: Deployment) -> tuple[list[str], str]:
    """The Flink job ids of an instance's runs, oldest first, and its last savepoint ('')."""
    known = _known(_registry(settings, job, deployment))
    return known.get("job_ids", []), known.get("savepoint", "")


def restore_point(settings: Settings, job: StreamingJob, deployment: Deployment) -> str | None:
    """The newest savepoint or retained checkpoint of this job instance's earlier runs."""
    known = _known(_registry(settings, job, deployment))
    candidates: list[tuple[float, str]] = []
    if known.get("savepoint") and Path(known["savepoint"].removeprefix("file:")).exists():
        candidates.append((known.get("savepoint_at", 0), known["savepoint"]))
    for job_id in known.get("job_ids", []):
        directory = settings.home / "flink" / "checkpoints" / job_id
        for checkpoint in directory.glob("chk-*/_metadata"):
            candidates.append((checkpoint.stat().st_mtime, str(checkpoint.parent)))
    return max(candidates)[1] if candidates else None


def deploy(
    settings: Settings, job: StreamingJob, deployment: Deployment = DEFAULT_DEPLOYMENT
) -> str:
    """Submit a job unless an instance is already running; return the running job's id."""
    running = running_id(settings, job, deployment)
    if running:
        return running
    spec = job_spec(settings, job, deployment)
    spec_path = settings.home / "flink" / "jobs" / f"{deployment.topic_prefix}{job.name}.spec.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec, indent=2))
    job_id = run_client(
        settings,
        ["-m", "fraud_streaming.submit", str(spec_path)],
        f"deployment of the {job.name} job",
        timeout=300,
    )
    FlinkJobs(settings).wait_running(job_id)
    _note(settings, job, deployment, job_id=job_id)
    return job_id


def running_id(
    settings: Settings, job: StreamingJob, deployment: Deployment = DEFAULT_DEPLOYMENT
) -> str | None:
    """The id of the job's running instance, if one runs."""
    running = FlinkJobs(settings).find(deployment.instance_name(job))
    return running[0]["jid"] if running else None


def stop(settings: Settings, job: StreamingJob, deployment: Deployment = DEFAULT_DEPLOYMENT) -> str:
    """Stop the running instance with a savepoint; return the savepoint's path."""
    flink = FlinkJobs(settings)
    name = deployment.instance_name(job)
    running = flink.find(name)
    if not running:
        raise StackError(f"no running {name} job to stop")
    location = flink.stop_with_savepoint(running[0]["jid"])
    _note(settings, job, deployment, savepoint=location, savepoint_at=time.time())
    return location


def restart(
    settings: Settings, job: StreamingJob, deployment: Deployment = DEFAULT_DEPLOYMENT
) -> tuple[str, str | None]:
    """Stop the job if it runs (with a savepoint), then deploy it from the newest savepoint
    or retained checkpoint. Returns (job id, where it resumed from)."""
    flink = FlinkJobs(settings)
    name = deployment.instance_name(job)
    if flink.find(name, {"RUNNING"}):
        stop(settings, job, deployment)
    for stuck in flink.find(name):
        flink.cancel(stuck["jid"])
    resume = restore_point(settings, job, deployment)
    job_id = deploy(settings, job, replace(deployment, restore_from=resume or ""))
    return job_id, resume


WATCHED = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "FAILED"}


def observe(
    flink: FlinkJobs,
    settings: Settings,
    job: StreamingJob,
    deployment: Deployment = DEFAULT_DEPLOYMENT,
) -> tuple[dict, Alert | None]:
    """The observation metadata of one job, and the alert it calls for (if any)."""
    name = deployment.instance_name(job)
    found = flink.find(name, states=WATCHED)
    if not found:
        detail = f"no Flink job named {name}; run the streaming_deploy job"
        alert = Alert("streaming/observer", "ERROR", f"streaming job {name} is not running", detail)
        return {"state": "MISSING"}, alert
    status = flink.status(found[0]["jid"])
    now_ms = time.time() * 1000
    metadata = {
        "state": status.state,
        "flink_job_id": status.job_id,
        "uptime_s": round(status.duration_ms / 1000),
        "restarts": status.restarts,
        "records_in": status.records_in,
        "records_out": status.records_out,
    }
    if status.last_checkpoint_ms:
        metadata["last_checkpoint_age_s"] = round((now_ms - status.last_checkpoint_ms) / 1000, 1)
        metadata["last_checkpoint"] = status.last_checkpoint_path or ""
    raw = topic_name(job.reads[0], deployment.topic_prefix)
    lag = consumer_lag(settings.kafka_bootstrap, deployment.group(job), raw)
    if lag is not None:
        metadata["consumer_lag"] = lag
    if not status.running:
        alert = Alert("streaming/observer", "ERROR", f"streaming job {name} is {status.state}",
                      f"Flink job {status.job_id}, {status.restarts} restarts")  # fmt: skip
        return metadata, alert
    return metadata, None
