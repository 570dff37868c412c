"""Every Dagster run that finishes is a data access: it goes to the audit log with its job,
assets, partition and outcome, under the user who launched it (or the orchestrator)."""

import dagster as dg

from fraud_platform.governance import audit
from fraud_platform.governance.rbac import Actor


def materialized(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The assets a run wrote, from its materialization events."""
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    return sorted({r.event_log_entry.dagster_event.asset_key.to_user_string() for r in records})


def audit_run(instance: dg.DagsterInstance, run: dg.DagsterRun, outcome: str) -> dict:
    orchestrator = Actor.current()
    actor = Actor(run.tags.get("dagster/user", orchestrator.user), orchestrator.role)
    details = {
        "run_id": run.run_id,
        "assets": materialized(instance, run.run_id),
        "partition": run.tags.get("dagster/partition")
        or run.tags.get("dagster/asset_partition_range_start"),
    }
    return audit.record("dagster.run", run.job_name, details, actor=actor, outcome=outcome)


def _sensor(status: dg.DagsterRunStatus, outcome: str):
    @dg.run_status_sensor(
        name=f"audit_{outcome}_runs",
        run_status=status,
        monitor_all_code_locations=False,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
    )
    def audit_runs(context: dg.RunStatusSensorContext) -> None:
        audit_run(context.instance, context.dagster_run, outcome)

    return audit_runs


audit_succeeded_runs = _sensor(dg.DagsterRunStatus.SUCCESS, "succeeded")
audit_failed_runs = _sensor(dg.DagsterRunStatus.FAILURE, "failed")

defs = dg.Definitions(sensors=[audit_succeeded_runs, audit_failed_runs])
