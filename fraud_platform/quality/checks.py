"""Suites as Dagster asset checks: one check per (suite, asset) in quality_suites/checks.yaml.

A check validates each date of the run (a backfill's whole range in one run) and reports the
failing expectations with their unexpected counts and samples. Blocking checks with severity
ERROR stop the guarded asset's downstream assets in the same run. Each date's result is also
written as a Data Docs page to the lake's analytics/data_quality_reports/date=D/, linked from
the check's metadata.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import dagster as dg

from fraud_platform.alerts import Alert, Alerter
from fraud_platform.batch.metadata import partition_dates
from fraud_platform.lake import write_atomically
from fraud_platform.partitions import daily
from fraud_platform.progress import report
from fraud_platform.quality.runner import Outcome, validate
from fraud_platform.quality.suites import SuiteCheck, checks_for

REPORTS_PATH = "analytics/data_quality_reports"


@dataclass(frozen=True)
class Loaded:
    """What a check validates for one date: the frame, and the suite parameters only known
    from the data (references from earlier days, the day's dead-letter count, ...)."""

    frame: Any
    parameters: dict[str, Any] = field(default_factory=dict)


# (resources by name, date) -> the frame to validate for that date, or a Loaded
Loader = Callable[[dict[str, Any], str], Any]


def suite_checks(
    asset: str,
    load: Loader | Mapping[str, Loader],
    resource_keys: set[str],
    settings: Callable[[], dict[str, Any]] = dict,
    **parameters: Any,
) -> list[dg.AssetChecksDefinition]:
    """The checks quality_suites/checks.yaml binds to `asset`, each validating what `load`
    gives (or, given {suite: loader}, only those suites with their own loaders);
    `parameters` are values only the code knows (catalog features, the currencies), and
    `settings()` gives those read from the environment, when the check runs."""
    keys = {"lake", *resource_keys}
    checks = [c for c in checks_for(asset) if not isinstance(load, Mapping) or c.suite in load]
    return [
        _check(c, load[c.suite] if isinstance(load, Mapping) else load, keys, parameters, settings)
        for c in checks
    ]


def run_suite(check: SuiteCheck, loaded: Any, lake: Any, day: str, **parameters: Any) -> Outcome:
    """Validate one date's data and write its Data Docs page into the lake."""
    if not isinstance(loaded, Loaded):
        loaded = Loaded(loaded)
    outcome = validate(loaded.frame, check, **parameters, **loaded.parameters)
    filesystem, base = lake.filesystem()
    write_atomically(filesystem, f"{base}/{report_path(check, day)}", outcome.page().encode())
    return outcome


def report_path(check: SuiteCheck, day: str) -> str:
    return f"{REPORTS_PATH}/date={day}/{check.name}.html"


def _check(
    check: SuiteCheck,
    load: Loader,
    resource_keys: set[str],
    parameters: dict[str, Any],
    settings: Callable[[], dict[str, Any]],
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
        lake = resources["lake"]
        given = {**parameters, **settings()}
        by_date = {}
        for day in partition_dates(context):
            report(f"checking {check.suite} on {day}")
            by_date[day] = run_suite(check, load(resources, day), lake, day, **given)
        failures = [f"{day}: {f.summary()}" for day, o in by_date.items() for f in o.failures]
        if failures:
            headline, detail = _headline(check, failures), "\n".join(failures[:20])
            alert = Alert(f"quality/{check.name}", check.severity, headline, detail)
            Alerter.from_env().send(alert)
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
                "data_docs": dg.MetadataValue.path(lake.uri(report_path(check, max(by_date)))),
                **lake.link(report_path(check, max(by_date))),
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
