"""The nightly schedule and the label-arrival sensor, evaluated against a Dagster instance."""

from datetime import UTC, datetime

import dagster as dg

from assets.raw import raw_labels
from fraud_platform.definitions import defs
from fraud_platform.partitions import daily
from sensors.labels import label_arrival_sensor
from sensors.schedules import nightly_schedule


def test_nightly_schedule_builds_yesterday_at_two():
    assert nightly_schedule.cron_schedule == "0 2 * * *"
    assert nightly_schedule.execution_timezone in (None, "UTC")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 3, 5, 2, 0, tzinfo=UTC)
    )
    requests = nightly_schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2025-03-04"]


def _land(instance, *partitions: str) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(raw_labels.key, partition=partition)
        )


def _tick(instance, cursor):
    context = dg.build_multi_asset_sensor_context(
        monitored_assets=[raw_labels.key], instance=instance, definitions=defs, cursor=cursor
    )
    result = label_arrival_sensor.evaluate_tick(context)
    return [r.partition_key for r in result.run_requests or []], result.cursor


def test_the_sensor_fires_once_per_new_label_partition():
    with dg.instance_for_test() as instance:
        _land(instance, "2025-03-02", "2025-03-03", "2025-03-01")  # three between two ticks
        partitions, cursor = _tick(instance, None)
        assert partitions == ["2025-03-01", "2025-03-02", "2025-03-03"]
        assert _tick(instance, cursor)[0] == []  # nothing new: nothing requested
        _land(instance, "2025-03-04")
        partitions, cursor = _tick(instance, cursor)
        assert partitions == ["2025-03-04"]


@dg.asset(key=raw_labels.key, partitions_def=daily)
def _labels_landing() -> None:
    """raw/labels as a run materializes it, without the lake behind it."""


def _land_in_run(instance, partition: str, job: str, tags: dict) -> None:
    definitions = dg.Definitions(
        assets=[_labels_landing], jobs=[dg.define_asset_job(job, selection=[raw_labels.key])]
    )
    result = definitions.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, tags=tags
    )
    assert result.success


def test_labels_a_backfill_or_the_nightly_job_materialized_train_nothing_more():
    with dg.instance_for_test() as instance:
        _land_in_run(instance, "2025-03-01", "labels_only", {"dagster/backfill": "first-run"})
        _land_in_run(instance, "2025-03-02", "nightly_batch", {})
        _land_in_run(instance, "2025-03-03", "labels_only", {})
        assert _tick(instance, None)[0] == ["2025-03-03"]
