"""The first run's services: live simulated traffic, and the lake's reports over HTTP.

Neither is part of a plain `stack up`: traffic only makes sense over the simulated world the
first run wrote (`fraud-platform run`, which records it), and both are for looking at the
platform, not for running it. `stack down` stops them with the rest.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from fraud_platform.config import LOOPBACK, Settings
from fraud_platform.stack.ingestion import HeartbeatService, supervised
from fraud_platform.stack.process import StackError
from fraud_platform.stack.service import Service


@dataclass(frozen=True)
class DemoWorld:
    """The simulated world of the first run: its history and its live traffic share it, so
    live payments come from the users and merchants the model was trained on."""

    days: int = 90  # the longest feature window's warm-up, then one training set
    volume: int = 1_000  # payments per simulated day
    users: int = 1_000
    merchants: int = 1_000
    seed: int = 42
    rate: float = 20.0  # live payments per second
    train_days: int = 7  # the training period the first run's features cover (the Handbook's)
    history_end: str = ""  # the history's last day, once written

    @staticmethod
    def path(settings: Settings) -> Path:
        return settings.home / "run" / "demo-world.json"

    def save(self, settings: Settings) -> None:
        self.path(settings).parent.mkdir(parents=True, exist_ok=True)
        self.path(settings).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, settings: Settings) -> DemoWorld | None:
        try:
            return cls(**json.loads(cls.path(settings).read_text()))
        except FileNotFoundError:
            return None


class TrafficService(HeartbeatService):
    """`simulate live` forever over the recorded world, at its rate."""

    name = "traffic"
    needs = ("kafka",)
    on_demand = True

    def command(self) -> list[str]:
        world = DemoWorld.load(self.settings)
        if world is None:
            raise StackError("no simulated world to send traffic from: `make run` writes one")
        options = {
            "rate": world.rate,
            "count": 0,
            "volume": world.volume,
            "seed": world.seed,
            "users": world.users,
            "merchants": world.merchants,
        }
        arguments = [item for k, v in options.items() for item in (f"--{k}", str(v))]
        return supervised(self.name, "simulate", "live", *arguments)

    def endpoint(self) -> str:
        world = DemoWorld.load(self.settings)
        rate = f"{world.rate:g}/s" if world else "no world yet"
        return f"transactions-ingest ({rate})"


class DocsService(Service):
    """The lake's analytics/ folder (quality dashboards, Data Docs) on a loopback port, so the
    links in the assets' metadata open in a browser. A lake on S3 is served by S3."""

    name = "docs"
    on_demand = True
    start_timeout = 30.0

    @property
    def ports(self) -> dict[str, int]:
        return {"FRAUD_DOCS_PORT": self.settings.ports.docs}

    @property
    def folder(self) -> Path:
        return Path(self.settings.lake_root) / "analytics"

    def prepare(self) -> None:
        if "://" in self.settings.lake_root:
            raise StackError(f"the lake is at {self.settings.lake_root}: its reports are there")
        self.folder.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        port = str(self.settings.ports.docs)
        return [sys.executable, "-m", "http.server", port, "-b", LOOPBACK, "-d", str(self.folder)]

    def healthy(self) -> bool:
        try:
            return httpx.get(self.endpoint(), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def endpoint(self) -> str:
        return f"{self.settings.docs_url}/"
