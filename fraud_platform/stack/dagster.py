"""Dagster (`dagster dev`: webserver + daemon) against workspace.yaml.

DAGSTER_HOME lives in the state dir, so runs, schedules and sensor cursors survive a restart;
its dagster.yaml is a link to the one in the repo, so instance settings are reviewed code.
"""

from __future__ import annotations

import sys

import httpx

from fraud_platform.config import LOOPBACK, PROJECT_ROOT
from fraud_platform.stack.service import Service


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
        self.dir.mkdir(parents=True, exist_ok=True)
        link = self.dir / "dagster.yaml"
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to(PROJECT_ROOT / "dagster.yaml")

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "DAGSTER_HOME": str(self.dir)}

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
