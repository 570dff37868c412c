"""The streaming jobs, observed through the Flink REST API, and the monitoring job's windows
validated by Layer 2.

Every minute each job's state, uptime, restarts, last completed checkpoint, records in and
out and consumer lag are recorded as an observation of its external asset (so the UI shows
them over time, and the checkpoint age tells how fresh the job's output is). A job that is
missing or not running raises an alert through the platform's one alerting interface.
"""

import json

import dagster as dg

from assets.keys import job_asset_key
from fraud_platform.alerts import Alert, Alerter
from fraud_platform.config import Settings
from fraud_platform.quality.streaming import new_windows, validate_window, window_name
from fraud_platform.streaming.control import FlinkJobs, observe
from fraud_platform.streaming.jobs import JOBS, MONITORING
from fraud_platform.topics import QUALITY_STREAM_WINDOWS


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


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def streaming_window_quality(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Layer 2: the streaming suite on each new window summary of the monitoring job."""
    settings = Settings.from_env()
    return window_quality(settings.kafka_bootstrap, QUALITY_STREAM_WINDOWS.name,
                          context.cursor, Alerter.from_env())  # fmt: skip


def window_quality(bootstrap: str, topic: str, cursor: str | None, alerter: Alerter):
    """Each window summary after the cursor (the next offsets) validated; each becomes an
    observation of the job's asset (volume, lag, worst missing increase and PSI, outcome),
    a failing one alerts."""
    offsets = {int(p): o for p, o in json.loads(cursor or "{}").items()}
    summaries, offsets = new_windows(bootstrap, topic, offsets)
    observations = []
    for summary in summaries:
        if "invalid" in summary:
            alerter.send(Alert("quality/streaming_window_metrics", "WARN",
                               "unreadable window summary", summary["invalid"]))  # fmt: skip
            continue
        outcome, frame = validate_window(summary, alerter)
        observations.append(
            dg.AssetObservation(
                asset_key=job_asset_key(MONITORING),
                metadata=window_metadata(window_name(summary), outcome, frame),
            )
        )
    return dg.SensorResult(asset_events=observations, cursor=json.dumps(offsets))


OBSERVED = ("volume", "lag_p95_ms", "lag_p99_ms", "schema_changes", "missing_rate_increase",
            "psi", "amount_mean")  # fmt: skip


def window_metadata(window: str, outcome, frame) -> dict:
    def worst(metric: str) -> float | None:
        values = frame.loc[frame["metric"] == metric, "value"].dropna()
        return None if values.empty else round(float(values.max()), 4)

    return {
        "window": window,
        "passed": outcome.success,
        "failures": [f.summary() for f in outcome.failures],
        **{m: worst(m) for m in OBSERVED},
    }


defs = dg.Definitions(sensors=[streaming_jobs_observer, streaming_window_quality])
