"""Validate a DataFrame against a suite with an ephemeral GX context.

Great Expectations takes seconds to import, so it is imported on first validation only (the
Dagster code location loads without it). One context per process, analytics off, no progress
bars in run logs.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fraud_platform.quality.suites import SuiteCheck

SAMPLE_SIZE = 5
_lock = threading.Lock()
_batches: dict[str, Any] = {}


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str  # e.g. expect_column_values_to_not_be_null
    column: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: list[Any]
    observed: Any  # for aggregate expectations (a mean, a row count)

    def summary(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.unexpected_count is not None:
            return (
                f"{self.expectation}{where}: {self.unexpected_count} unexpected "
                f"({self.unexpected_percent:.2f}%), e.g. {self.sample}"
            )
        return f"{self.expectation}{where}: observed {self.observed}"


@dataclass(frozen=True)
class Outcome:
    success: bool
    evaluated: int
    failures: list[FailedExpectation] = field(default_factory=list)
    seconds: float = 0.0


def _batch_definition(kind: str):
    """The context's one whole-DataFrame batch definition for pandas or Spark frames."""
    with _lock:
        if kind not in _batches:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            if "context" not in _batches:
                config = DataContextConfig(
                    store_backend_defaults=InMemoryStoreBackendDefaults(),
                    progress_bars=ProgressBarsConfig(globally=False),
                    analytics_enabled=False,
                )
                _batches["context"] = gx.get_context(mode="ephemeral", project_config=config)
            sources = _batches["context"].data_sources
            source = sources.add_pandas(kind) if kind == "pandas" else sources.add_spark(kind)
            asset = source.add_dataframe_asset("frame")
            _batches[kind] = asset.add_batch_definition_whole_dataframe("whole")
        return _batches[kind]


def _plain(value: Any) -> Any:
    """JSON-safe values for Dagster metadata (NaN, numpy scalars, timestamps)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def validate(frame: Any, check: SuiteCheck, **parameters: Any) -> Outcome:
    """Run `check`'s suite on a pandas or Spark DataFrame; `parameters` fill its $PARAMETERs
    (on top of checks.yaml's defaults and the environment's overrides)."""
    kind = "pandas" if hasattr(frame, "iloc") else "spark"
    definition = _batch_definition(kind)
    import great_expectations as gx  # loaded by _batch_definition, with analytics off

    started = time.monotonic()
    suite = gx.ExpectationSuite(**check.definition())
    result = definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, expectation_parameters=check.resolved_parameters(**parameters)
    )
    failures = [
        FailedExpectation(
            expectation=r.expectation_config.type,
            column=r.expectation_config.kwargs.get("column"),
            unexpected_count=r.result.get("unexpected_count"),
            unexpected_percent=r.result.get("unexpected_percent"),
            sample=[_plain(v) for v in (r.result.get("partial_unexpected_list") or [])][
                :SAMPLE_SIZE
            ],
            observed=_plain(r.result.get("observed_value")),
        )
        for r in result.results
        if not r.success
    ]
    return Outcome(
        success=result.success,
        evaluated=len(result.results),
        failures=failures,
        seconds=round(time.monotonic() - started, 2),
    )
