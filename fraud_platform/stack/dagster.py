"""Dagster (`dagster dev`: webserver + daemon) against workspace.yaml.

DAGSTER_HOME lives in the state dir, so runs, schedules and sensor cursors survive a restart;
its dagster.yaml is a link to the one in the repo, so instance settings are reviewed code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from fraud_platform.config import LOOPBACK, PROJECT_ROOT
from fraud_platform.stack.service import Service


def link_instance_settings(home: Path) -> Path:
    """Make `home` a Dagster instance directory whose dagster.yaml is the repo's (telemetry
    off, the run limits): every instance the platform creates, the CLI's too."""
    home.mkdir(parents=True, exist_ok=True)
    link = home / "dagster.yaml"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(PROJECT_ROOT / "dagster.yaml")
    return home


class DagsterService(Service):
    name = "dagster"
    start_timeout = 240.0

    @property
    def ports(self) -> dict[str, int]:
        return {"FRAUD_DAGSTER_PORT": self.settings.ports.dagster}

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.settings.ports.dagster}"

    def prepare(self) -> None:
        link_instance_settings(self.dir)
        self.fail_orphaned_runs()

    def fail_orphaned_runs(self) -> list[str]:
        """Runs `dagster dev` launched and left in flight when it last stopped: their workers
        died with it. Marked failed, with their pool slots freed, so no step waits forever
        for a slot a dead run holds. In-process runs (the CLI's, the tests') are left alone."""
        import dagster as dg
        from dagster._core.instance.ref import InstanceRef

        if not (self.dir / "history").exists():  # a new home: no run yet
            return []
        in_flight = [
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
            dg.DagsterRunStatus.CANCELING,
        ]
        failed = []
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(self.dir))) as instance:
            for run in instance.get_runs(filters=dg.RunsFilter(statuses=in_flight)):
                if ".dagster/grpc_info" not in run.tags:
                    continue
                instance.report_run_failed(run, "its worker stopped with the stack")
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
                failed.append(run.run_id)
        return failed

    def environment(self) -> dict[str, str]:
        # The orchestrator acts as the ML architect: its gate is the approval a production
        # promotion needs (governance/rbac.py). FRAUD_DAGSTER_ROLE narrows it.
        role = os.environ.get("FRAUD_DAGSTER_ROLE", "ml_architect")
        return {**super().environment(), "DAGSTER_HOME": str(self.dir), "FRAUD_ROLE": role}

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
            "-h",
            LOOPBACK,
            "-p",
            str(self.settings.ports.dagster),
        ]

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/server_info", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def endpoint(self) -> str:
        return self.url
