"""Failed runs as alerts: every run that fails, in any job, goes through the platform's one
alerting interface (log and file; Slack and e-mail by configuration)."""

import dagster as dg

from fraud_platform.alerts import Alert, Alerter


def run_failure_alert(run: dg.DagsterRun, message: str) -> Alert:
    """The alert for a failed run: its job, partition and Dagster's failure message."""
    partition = run.tags.get("dagster/partition")
    where = f" (partition {partition})" if partition else ""
    return Alert(
        source="dagster/run_failure",
        severity="ERROR",
        title=f"run {run.run_id[:8]} of {run.job_name}{where} failed",
        detail=message,
    )


@dg.run_failure_sensor(
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
    failed = Alerter.from_env().send(
        run_failure_alert(context.dagster_run, context.failure_event.message or "")
    )
    if failed:
        context.log.warning("alert sinks failed: %s", "; ".join(failed))


defs = dg.Definitions(sensors=[run_failure_alerts])
