"""Starting Dagster fails the runs its last life left in flight and frees their pool slots,
so no step waits forever behind a dead run."""

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from fraud_platform.config import Settings
from fraud_platform.stack.dagster import DagsterService


def test_runs_left_in_flight_are_failed_and_their_slots_freed(tmp_path):
    service = DagsterService(Settings(home=tmp_path))
    service.dir.mkdir(parents=True)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(service.dir))) as instance:
        instance.event_log_storage.set_concurrency_slots("spark", 1)
        orphan = dg.DagsterRun(job_name="nightly_batch", run_id="dead-worker",
                               status=dg.DagsterRunStatus.STARTED,
                               tags={".dagster/grpc_info": "{}"})  # fmt: skip
        in_process = dg.DagsterRun(job_name="train", run_id="cli-run",
                                   status=dg.DagsterRunStatus.STARTED)  # fmt: skip
        for run in (orphan, in_process):
            instance.add_run(run)
        instance.event_log_storage.claim_concurrency_slot("spark", "dead-worker", "features")

    assert service.fail_orphaned_runs() == ["dead-worker"]

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(service.dir))) as instance:
        assert instance.get_run_by_id("dead-worker").status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id("cli-run").status == dg.DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_info("spark").active_slot_count == 0
