"""The Layer-1 ingestion services: the validator and the lake archiver."""

from __future__ import annotations

import sys
import time

import httpx

from fraud_platform.config import LOOPBACK
from fraud_platform.stack.service import Service


class ValidatorService(Service):
    name = "validator"
    needs = ("redis", "kafka")
    start_timeout = 60.0

    @property
    def ports(self) -> dict[str, int]:
        return {"FRAUD_VALIDATOR_METRICS_PORT": self.settings.ports.validator_metrics}

    def prepare(self) -> None:
        pass

    def environment(self) -> dict[str, str]:
        port = str(self.settings.ports.validator_metrics)
        return {**super().environment(), "FRAUD_VALIDATOR_METRICS_PORT": port}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "fraud_platform.cli", "ingest", "validate"]

    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.settings.ports.validator_metrics}/metrics"

    def healthy(self) -> bool:
        try:
            return httpx.get(self.endpoint(), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class ArchiverService(Service):
    name = "archiver"
    needs = ("kafka",)
    start_timeout = 60.0

    @property
    def ports(self) -> dict[str, int]:
        return {}

    @property
    def heartbeat(self):
        return self.settings.home / "run" / "archiver.heartbeat"

    def prepare(self) -> None:
        self.heartbeat.unlink(missing_ok=True)

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "FRAUD_ARCHIVER_HEARTBEAT": str(self.heartbeat)}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "fraud_platform.cli", "ingest", "archive"]

    def endpoint(self) -> str:
        return f"{self.settings.lake_root} (raw, labels, predictions, dead letters)"

    def healthy(self) -> bool:
        try:
            return time.time() - self.heartbeat.stat().st_mtime < 10
        except FileNotFoundError:
            return False
