"""Suites as Dagster asset checks: one check per (suite, asset) in quality_suites/checks.yaml.

A check validates each date of the run (a backfill's whole range in one run) and reports the
failing expectations with their unexpected counts and samples. Blocking checks with severity
ERROR stop the guarded asset's downstream assets in the same run.
"""

from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import dagster as dg

from fraud_platform.batch.metadata import partition_dates
from fraud_platform.partitions import daily
from fraud_platform.quality.runner import validate
from fraud_platform.quality.suites import SuiteCheck, checks_for

# (resources by name, date) -> the DataFrame to validate for that date
Loader = Callable[[dict[str, Any], str], Any]


def suite_checks(
    asset: str, load: Loader, resource_keys: set[str], **parameters: Any
) -> list[dg.AssetChecksDefinition]:
    """The checks quality_suites/checks.yaml binds to `asset`; `parameters` are values only
    the code knows (the catalog's features, the validator's currencies)."""
    return [_check(c, load, resource_keys, parameters) for c in checks_for(asset)]


def _check(
    check: SuiteCheck, load: Loader, resource_keys: set[str], parameters: dict[str, Any]
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(check.asset_path),
        name=check.name,
        description=f"Layer {check.layer}: {check.description}",
        blocking=check.blocking,
        partitions_def=daily,
        required_resource_keys=resource_keys,
        metadata={"suite": f"quality_suites/{check.suite}.json", "layer": check.layer},
    )
    def _run(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        resources = {key: getattr(context.resources, key) for key in resource_keys}
        by_date = {day: validate(load(resources, day), check, **parameters)
                   for day in partition_dates(context)}  # fmt: skip
        failures = [f"{day}: {f.summary()}" for day, o in by_date.items() for f in o.failures]
        return dg.AssetCheckResult(
            passed=all(o.success for o in by_date.values()),
            severity=dg.AssetCheckSeverity[check.severity],
            description=_headline(check, failures),
            metadata={
                "expectations": sum(o.evaluated for o in by_date.values()),
                "failed": len(failures),
                "failures": dg.MetadataValue.json(failures),
                "details": dg.MetadataValue.json(dict(_details(by_date))),
                "seconds": round(sum(o.seconds for o in by_date.values()), 2),
            },
        )

    return _run


def _headline(check: SuiteCheck, failures: list[str]) -> str:
    if not failures:
        return f"{check.suite}: every expectation met"
    return f"{check.suite}: {len(failures)} failed, first: {failures[0]}"


def _details(by_date: dict) -> Iterator[tuple[str, list[dict]]]:
    for day, outcome in by_date.items():
        yield day, [asdict(f) for f in outcome.failures]
