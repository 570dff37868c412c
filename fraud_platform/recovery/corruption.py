"""The data-corruption runbook as code, for one date of an archived lake table: find the
files that cannot be read whole, set every file of the date aside in the quarantine (nothing
is deleted), rebuild the date from Kafka, and check it again. Each step is audited.

    quarantine/partitions/{table}/date={day}/{stamp}/...   the date's files as they were
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
from pyarrow import fs as pafs

from fraud_platform.governance import audit
from fraud_platform.ingestion.archiver import ArchiveRoute
from fraud_platform.ingestion.rearchive import rebuild_date
from fraud_platform.lake import RAW_TRANSACTIONS
from fraud_platform.recovery.backups import stamp

QUARANTINED_PARTITIONS = "quarantine/partitions"
Check = Callable[[str], bool]  # a date -> whether the date passes


@dataclass(frozen=True)
class Damage:
    """A file of the date that does not read as the table: where, and what is wrong."""

    path: str
    reason: str


@dataclass
class Repair:
    """What the runbook did for one date."""

    table: str
    day: str
    damaged: list[Damage]
    quarantined: list[str]
    rows: int = 0
    damaged_after: list[Damage] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)  # suite -> passed, after the rebuild

    @property
    def healthy(self) -> bool:
        return not self.damaged_after and all(self.checks.values())


def _files(lake, table_path: str, day: date) -> list[str]:
    filesystem, base = lake.filesystem()
    selector = pafs.FileSelector(f"{base}/{table_path}/date={day}", allow_not_found=True,
                                 recursive=True)  # fmt: skip
    return sorted(i.path for i in filesystem.get_file_info(selector)
                  if i.is_file and i.path.endswith(".parquet"))  # fmt: skip


def inspect_date(lake, route: ArchiveRoute, day: date) -> list[Damage]:
    """Every Parquet file of the date that cannot be read whole, or lacks a column of the
    table's schema."""
    filesystem, _ = lake.filesystem()
    expected = set(route.table.schema.names)
    damaged = []
    for path in _files(lake, route.table.path, day):
        try:
            missing = expected - set(pq.read_table(path, filesystem=filesystem).column_names)
        except Exception as error:  # whatever the reader trips on is the damage to report
            damaged.append(Damage(path, f"unreadable: {type(error).__name__}: {error}"))
            continue
        if missing:
            damaged.append(Damage(path, f"missing columns: {', '.join(sorted(missing))}"))
    return damaged


def quarantine_date(lake, route: ArchiveRoute, day: date, now: datetime) -> list[str]:
    """Move every file of the date under the quarantine, keeping its relative path."""
    filesystem, base = lake.filesystem()
    source = f"{base}/{route.table.path}/date={day}"
    target = f"{base}/{QUARANTINED_PARTITIONS}/{route.table.path}/date={day}/{stamp(now)}"
    moved = []
    for path in _files(lake, route.table.path, day):
        destination = f"{target}/{path.removeprefix(source + '/')}"
        filesystem.create_dir(destination.rsplit("/", 1)[0], recursive=True)
        filesystem.move(path, destination)
        moved.append(destination)
    audit.record("repair.quarantine", source, {"files": len(moved), "to": target})
    return moved


def repair_date(route: ArchiveRoute, bootstrap: str, lake, day: date, topic_prefix: str = "",
                checks: dict[str, Check] | None = None) -> Repair:  # fmt: skip
    """The runbook for one date: inspect, quarantine, rebuild from Kafka, inspect again and
    run `checks` ({name: callable(day) -> passed}) on the rebuilt date."""
    repair = Repair(route.table.path, str(day), inspect_date(lake, route, day), [])
    audit.record("repair.inspect", f"{route.table.path}/date={day}",
                 {"damaged": [vars(d) for d in repair.damaged]})  # fmt: skip
    repair.quarantined = quarantine_date(lake, route, day, datetime.now(UTC))
    repair.rows = rebuild_date(route, bootstrap, lake, day, topic_prefix)
    repair.damaged_after = inspect_date(lake, route, day)
    repair.checks = {name: check(str(day)) for name, check in (checks or {}).items()}
    audit.record("repair.rebuild", f"{route.table.path}/date={day}",
                 {"rows": repair.rows, "checks": repair.checks},
                 outcome="ok" if repair.healthy else "still damaged")  # fmt: skip
    return repair


def quality_checks(route: ArchiveRoute, lake) -> dict[str, Check]:
    """The quality suites that guard the route's table in the lineage (Layer 1 for raw
    transactions), as checks of a date; none for the tables no suite guards."""
    from fraud_platform.ingestion.rules import Rules
    from fraud_platform.quality import loaders
    from fraud_platform.quality.checks import run_suite
    from fraud_platform.quality.suites import checks_for

    if route.table is not RAW_TRANSACTIONS:
        return {}
    currencies = sorted(Rules.from_env().currencies)

    def check(suite, day: str) -> bool:
        loaded = loaders.raw_transactions({"lake": lake}, day)
        return run_suite(suite, loaded, lake, day, currencies=currencies).success

    return {c.name: (lambda day, c=c: check(c, day)) for c in checks_for(route.table.path)}
