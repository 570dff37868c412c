"""The long-running Python services: the Layer-1 validator, the lake archiver and the online
scorer."""

from __future__ import annotations

import sys
import time

import httpx

from fraud_platform.config import LOOPBACK
from fraud_platform.stack.service import Service
from fraud_platform.stack.supervisor import restarts_file


def supervised(name: str, *arguments: str) -> list[str]:
    """The platform command `arguments`, restarted with backoff whenever it exits
    (`stack/supervisor.py`)."""
    cli = [sys.executable, "-m", "fraud_platform.cli", *arguments]
    return [sys.executable, "-m", "fraud_platform.stack.supervisor", name, "--", *cli]


class ValidatorService(Service):
    name = "validator"
    needs = ("redis", "kafka")
    start_timeout = 60.0

    @property
    def ports(self) -> dict[str, int]:
        return {"FRAUD_VALIDATOR_METRICS_PORT": self.settings.ports.validator_metrics}

    def prepare(self) -> None:
        restarts_file(self.settings, self.name).unlink(missing_ok=True)

    def environment(self) -> dict[str, str]:
        port = str(self.settings.ports.validator_metrics)
        return {**super().environment(), "FRAUD_VALIDATOR_METRICS_PORT": port}

    def command(self) -> list[str]:
        return supervised(self.name, "ingest", "validate")

    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.settings.ports.validator_metrics}/metrics"

    def healthy(self) -> bool:
        try:
            return httpx.get(self.endpoint(), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class HeartbeatService(Service):
    """A service that proves it is alive by touching a file (FRAUD_<NAME>_HEARTBEAT)."""

    start_timeout = 60.0
    arguments: tuple[str, ...] = ()

    @property
    def ports(self) -> dict[str, int]:
        return {}

    @property
    def heartbeat(self):
        return self.settings.home / "run" / f"{self.name}.heartbeat"

    def prepare(self) -> None:
        self.heartbeat.unlink(missing_ok=True)
        restarts_file(self.settings, self.name).unlink(missing_ok=True)

    def environment(self) -> dict[str, str]:
        variable = f"FRAUD_{self.name.upper()}_HEARTBEAT"
        return {**super().environment(), variable: str(self.heartbeat)}

    def command(self) -> list[str]:
        return supervised(self.name, *self.arguments)

    def healthy(self) -> bool:
        try:
            return time.time() - self.heartbeat.stat().st_mtime < 10
        except FileNotFoundError:
            return False


class ArchiverService(HeartbeatService):
    name = "archiver"
    needs = ("kafka",)
    arguments = ("ingest", "archive")

    def endpoint(self) -> str:
        return f"{self.settings.lake_root} (raw, labels, predictions, dead letters)"


class ScorerService(HeartbeatService):
    name = "scorer"
    needs = ("redis", "kafka")
    arguments = ("stream", "score")

    def endpoint(self) -> str:
        return "transactions-enriched -> model-predictions"
