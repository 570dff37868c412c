"""The streaming jobs, observed through the Flink REST API.

Every minute each job's state, uptime, restarts, last completed checkpoint, records in and
out and consumer lag are recorded as an observation of its external asset (so the UI shows
them over time, and the checkpoint age tells how fresh the job's output is). A job that is
missing or not running raises an alert through the platform's one alerting interface.
"""

import time

import dagster as dg

from assets.keys import job_asset_key
from fraud_platform.alerts import Alert, Alerter
from fraud_platform.config import Settings
from fraud_platform.streaming.control import FlinkJobs, consumer_lag
from fraud_platform.streaming.jobs import (
    DEFAULT_DEPLOYMENT,
    JOBS,
    Deployment,
    StreamingJob,
    job_spec,
)
from fraud_platform.topics import topic_name

WATCHED = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "FAILING", "FAILED"}


def observe(
    flink: FlinkJobs,
    settings: Settings,
    job: StreamingJob,
    deployment: Deployment = DEFAULT_DEPLOYMENT,
) -> tuple[dict, Alert | None]:
    """The observation metadata of one job, and the alert it calls for (if any)."""
    name = job_spec(settings, job, deployment)["name"]
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


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def streaming_jobs_observer(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    settings = Settings.from_env()
    flink = FlinkJobs(settings)
    observations, alerter = [], Alerter.from_env()
    for job in JOBS.values():
        try:
            metadata, alert = observe(flink, settings, job)
        except Exception as error:  # the cluster itself is away
            metadata = {"state": "UNREACHABLE"}
            alert = Alert("streaming/observer", "ERROR", "Flink REST API unreachable",
                          f"{settings.flink_rest_url}: {error}")  # fmt: skip
        observations.append(dg.AssetObservation(asset_key=job_asset_key(job), metadata=metadata))
        if alert is not None:
            alerter.send(alert)
            context.log.warning(alert.title)
    return dg.SensorResult(asset_events=observations)


defs = dg.Definitions(sensors=[streaming_jobs_observer])
