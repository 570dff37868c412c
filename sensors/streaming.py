"""The streaming jobs, observed through the Flink REST API.

Every minute each job's state, uptime, restarts, last completed checkpoint, records in and
out and consumer lag are recorded as an observation of its external asset (so the UI shows
them over time, and the checkpoint age tells how fresh the job's output is). A job that is
missing or not running raises an alert through the platform's one alerting interface.
"""

import dagster as dg

from assets.keys import job_asset_key
from fraud_platform.alerts import Alert, Alerter
from fraud_platform.config import Settings
from fraud_platform.streaming.control import FlinkJobs, observe
from fraud_platform.streaming.jobs import JOBS


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
