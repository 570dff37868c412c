"""The suites in quality_suites/ and which asset each one guards (quality_suites/checks.yaml).

Suites are GX 1.x JSON, reviewed like code; thresholds are `$PARAMETER`s whose defaults live
in checks.yaml and can be overridden per deployment with FRAUD_QUALITY_<NAME>.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from fraud_platform.config import PROJECT_ROOT

SUITES_DIR = PROJECT_ROOT / "quality_suites"


@dataclass(frozen=True)
class SuiteCheck:
    suite: str  # path under quality_suites/, without .json: "ingestion/raw_transactions"
    asset: str | None  # the guarded asset's key path ("raw/transactions"); None: not an asset
    layer: int
    severity: str  # ERROR or WARN
    blocking: bool
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The Dagster check name (an identifier): the layer folder and suite."""
        return self.suite.replace("/", "_")

    @property
    def asset_path(self) -> list[str]:
        return self.asset.split("/")

    def definition(self) -> dict[str, Any]:
        """The suite's JSON, parsed once per process (a fresh copy each call: GX mutates it)."""
        return json.loads(_suite_text(self.suite))

    def resolved_parameters(self, **from_code: Any) -> dict[str, Any]:
        """checks.yaml's defaults, then values the platform knows (catalog, currencies), then
        the environment's overrides."""
        values = {**self.parameters, **from_code}
        for name, default in values.items():
            override = os.environ.get(f"FRAUD_QUALITY_{name.upper()}")
            if override is not None:
                values[name] = _parse(override, default)
        return values


@cache
def _suite_text(suite: str) -> str:
    return (SUITES_DIR / f"{suite}.json").read_text()


def _parse(text: str, like: Any) -> Any:
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(like, int | float):
        return type(like)(text)
    if isinstance(like, list | tuple | set | frozenset):
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


@cache
def all_checks() -> tuple[SuiteCheck, ...]:
    entries = yaml.safe_load((SUITES_DIR / "checks.yaml").read_text())["checks"]
    return tuple(SuiteCheck(**entry) for entry in entries)


def checks_for(asset: str) -> list[SuiteCheck]:
    return [c for c in all_checks() if c.asset == asset]


def check_named(suite: str) -> SuiteCheck:
    """The binding of one suite ("posttraining/model_scores")."""
    for check in all_checks():
        if check.suite == suite:
            return check
    raise KeyError(f"no suite {suite!r} in quality_suites/checks.yaml")
