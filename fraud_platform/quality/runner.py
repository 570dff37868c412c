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
from functools import cache
from typing import Any

from fraud_platform.governance.exposure import shown
from fraud_platform.quality.suites import SuiteCheck

SAMPLE_SIZE = 5
_lock = threading.Lock()


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str  # e.g. expect_column_values_to_not_be_null
    column: str | None
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: list[Any]
    observed: Any  # for aggregate expectations (a mean, a row count)
    condition: Any = None  # the row condition's value, e.g. the metric a row-wise check covers

    def summary(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.unexpected_count is not None:
            share = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent else ""
            return f"{self.expectation}{where}: {self.unexpected_count} unexpected{share}, " + (
                f"e.g. {self.sample}"
            )
        return f"{self.expectation}{where}: observed {self.observed}"


@dataclass(frozen=True)
class Outcome:
    success: bool
    evaluated: int
    failures: list[FailedExpectation] = field(default_factory=list)
    seconds: float = 0.0
    result: Any = field(default=None, repr=False, compare=False)  # GX's validation result

    def page(self) -> str:
        """The result as a Data Docs validation page (GX's own renderer and template)."""
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        for r in self.result.results:  # GX's renderer cannot print numpy 2 scalars
            if "observed_value" in r.result:
                r.result["observed_value"] = _plain(r.result["observed_value"])
        return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(self.result))


@cache
def _context() -> Any:
    """The process's ephemeral GX context (in-memory stores, analytics off), with the
    platform's custom expectations registered."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    import fraud_platform.quality.expectations  # noqa: F401  (registers them with GX)

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@cache
def _batch_definition(kind: str) -> Any:
    """The context's one whole-DataFrame batch definition for pandas or Spark frames."""
    sources = _context().data_sources
    source = sources.add_pandas(kind) if kind == "pandas" else sources.add_spark(kind)
    return source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")


def _plain(value: Any) -> Any:
    """JSON-safe values for Dagster metadata (NaN, numpy scalars, timestamps)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _condition_value(condition: Any) -> Any:
    return condition.get("parameter") if isinstance(condition, dict) else None


def validate(frame: Any, check: SuiteCheck, **parameters: Any) -> Outcome:
    """Run `check`'s suite on a pandas or Spark DataFrame; `parameters` fill its $PARAMETERs
    (on top of checks.yaml's defaults and the environment's overrides)."""
    return validate_suite(frame, check.definition(), check.resolved_parameters(**parameters))


def validate_suite(frame: Any, suite_json: dict[str, Any], parameters: dict[str, Any]) -> Outcome:
    """Run a suite given as its JSON (a name and expectations) with all its $PARAMETERs."""
    kind = "pandas" if hasattr(frame, "iloc") else "spark"
    with _lock:  # GX's context is not safe to build from two threads at once
        definition = _batch_definition(kind)
    import great_expectations as gx  # loaded by _context, with analytics off

    started = time.monotonic()
    suite = gx.ExpectationSuite(**suite_json)
    result = definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, expectation_parameters=parameters
    )
    failures = [
        FailedExpectation(
            expectation=r.expectation_config.type,
            column=r.expectation_config.kwargs.get("column"),
            unexpected_count=r.result.get("unexpected_count"),
            unexpected_percent=r.result.get("unexpected_percent"),
            sample=[
                shown(r.expectation_config.kwargs.get("column"), _plain(v))
                for v in (r.result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]
            ],
            observed=_plain(r.result.get("observed_value")),
            condition=_condition_value(r.expectation_config.kwargs.get("row_condition")),
        )
        for r in result.results
        if not r.success
    ]
    return Outcome(
        success=result.success,
        evaluated=len(result.results),
        failures=failures,
        seconds=round(time.monotonic() - started, 2),
        result=result,
    )
