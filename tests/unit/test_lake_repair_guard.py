"""The corruption runbook stops the affected assets first: the lake_repair job refuses to
touch a date while runs materialize it, and names them."""

import dagster as dg
from dagster._core.test_utils import create_run_for_test

from assets.recovery import lake_repair, materializing
from fraud_platform.resources import KafkaResource, LakeResource


def test_the_repair_refuses_a_date_that_runs_are_materializing(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    day = "2026-11-29"
    run = lambda name, status, **tags: create_run_for_test(  # noqa: E731
        instance, job_name=name, status=status, tags=tags
    )
    running, starting = dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING
    nightly = run("nightly", running, **{"dagster/partition": day})
    november = {"dagster/asset_partition_range_start": "2026-11-01",
                "dagster/asset_partition_range_end": "2026-11-30"}  # fmt: skip
    backfill = run("backfill", starting, **november)
    run("done", dg.DagsterRunStatus.SUCCESS, **{"dagster/partition": day})
    run("other", running, **{"dagster/partition": "2026-11-28"})
    assert sorted(materializing(instance, day)) == sorted([nightly.run_id, backfill.run_id])

    lake = tmp_path / "lake" / "raw" / "transactions" / f"date={day}"
    lake.mkdir(parents=True)
    (lake / "part-p0-0.parquet").write_bytes(b"damaged")
    repair = lake_repair.execute_in_process(
        run_config={"ops": {"repair_lake_date": {"config": {"date": day}}}},
        resources={"lake": LakeResource(root=str(tmp_path / "lake")),
                   "kafka": KafkaResource(bootstrap_servers="127.0.0.1:1")},
        instance=instance, raise_on_error=False,
    )  # fmt: skip
    assert not repair.success
    failure = next(e for e in repair.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "2 run(s) are materializing 2026-11-29" in failure.step_failure_data.error.message
    assert (lake / "part-p0-0.parquet").read_bytes() == b"damaged"  # nothing moved
