"""The design's retention policy, written once and enforced twice.

- On S3, `lifecycle_rules` turns it into the bucket's lifecycle configuration: hot (Standard,
  0-90 days), warm (Intelligent-Tiering, 90 days-1 year), cold (Glacier Deep Archive, 1-7
  years), then deletion; S3 moves and deletes objects by their age.
- Everywhere (a local lake too), `plan_cleanup` finds what the policy says must go by the
  date the data is about (its `date=` partition, a model's version date, a log's last
  write), and `apply_cleanup` deletes it or moves it to `archive/`. A dry run only lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pyarrow.fs import FileSelector, FileType

from fraud_platform.governance import audit, audit_files
from fraud_platform.lake import (
    DEAD_LETTERS_PATH,
    LABELS,
    PREDICTIONS,
    PROCESSED_TRANSACTIONS_PATH,
    RAW_TRANSACTIONS,
    TRAINING_SETS_PATH,
    TRANSACTION_FEATURES_PATH,
)
from fraud_platform.models import registry

ARCHIVE = "archive"
YEAR = 365


@dataclass(frozen=True)
class Retention:
    """How long one kind of data is kept, and the storage classes it moves through on S3."""

    name: str
    prefixes: tuple[str, ...]  # lake folders holding `date=YYYY-MM-DD` partitions
    delete_after_days: int | None = None
    archive_after_days: int | None = None  # moved under archive/ (models)
    transitions: tuple[tuple[int, str], ...] = ()  # (age in days, S3 storage class)


TRANSACTIONS = Retention(
    "transactions",
    (RAW_TRANSACTIONS.path, LABELS.path, PREDICTIONS.path, PROCESSED_TRANSACTIONS_PATH,
     DEAD_LETTERS_PATH),
    delete_after_days=7 * YEAR,
    transitions=((90, "INTELLIGENT_TIERING"), (YEAR, "DEEP_ARCHIVE")),
)  # fmt: skip
TRAINING_DATA = Retention(
    "training data",
    (TRANSACTION_FEATURES_PATH, TRAINING_SETS_PATH),
    delete_after_days=90,
)
MODELS = Retention("models", (registry.CANDIDATES,), archive_after_days=YEAR)
ARCHIVED_MODELS = Retention(
    "archived models", (f"{ARCHIVE}/{registry.CANDIDATES}",), transitions=((0, "GLACIER"),)
)
LOGS_DAYS = 90
POLICY = (TRANSACTIONS, TRAINING_DATA, MODELS, ARCHIVED_MODELS)


def lifecycle_rules(prefix: str = "") -> list[dict]:
    """The bucket lifecycle configuration's rules for a lake under `prefix` of its bucket."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    rules = []
    for retention in POLICY:
        if not retention.transitions and retention.delete_after_days is None:
            continue
        for folder in retention.prefixes:
            rule = {
                "ID": f"{retention.name}: {folder}",
                "Filter": {"Prefix": f"{base}{folder}/"},
                "Status": "Enabled",
            }
            if retention.transitions:
                rule["Transitions"] = [
                    {"Days": days, "StorageClass": storage_class}
                    for days, storage_class in retention.transitions
                ]
            if retention.delete_after_days is not None:
                rule["Expiration"] = {"Days": retention.delete_after_days}
            rules.append(rule)
    return rules


def apply_lifecycle(s3_client, lake_root: str) -> list[dict]:
    """Replace the lake bucket's lifecycle configuration with the policy's rules."""
    bucket, _, prefix = lake_root.removeprefix("s3://").partition("/")
    rules = lifecycle_rules(prefix)
    s3_client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}
    )
    return rules


@dataclass(frozen=True)
class Expired:
    """One thing the policy says must go: what, why, and where it goes."""

    path: str  # inside the lake (or the platform's log folder)
    kind: str
    dated: date
    action: str  # "delete" or "archive"


_DATED = re.compile(r"^(?:date=)?(\d{4}-\d{2}-\d{2})")


def _dated_entries(lake, folder: str) -> list[tuple[str, date]]:
    filesystem, base = lake.filesystem()
    # Dead letters keep one folder per topic, each with its date partitions.
    recursive = folder == DEAD_LETTERS_PATH
    selector = FileSelector(f"{base}/{folder}", allow_not_found=True, recursive=recursive)
    found = []
    for info in filesystem.get_file_info(selector):
        match = _DATED.match(info.base_name)
        if info.type == FileType.Directory and match:
            found.append((info.path.removeprefix(f"{base}/"), date.fromisoformat(match[1])))
    return found


def plan_cleanup(lake, today: date | None = None, logs_dir: Path | None = None) -> list[Expired]:
    """Everything the policy says is past its time on `today`; the production model is kept
    whatever its age."""
    today = today or datetime.now(UTC).date()
    current = registry.current_version(lake)
    plan = []
    for retention in POLICY:
        for action, days in (("delete", retention.delete_after_days),
                             ("archive", retention.archive_after_days)):  # fmt: skip
            if days is None:
                continue
            cutoff = today - timedelta(days=days)
            for folder in retention.prefixes:
                plan += [
                    Expired(path, retention.name, dated, action)
                    for path, dated in _dated_entries(lake, folder)
                    if dated < cutoff and path.rsplit("/", 1)[-1] != current
                ]
    if logs_dir is not None and logs_dir.exists():
        cutoff = datetime.now(UTC) - timedelta(days=LOGS_DAYS)
        anchor = audit.anchor_path()  # rewritten by every entry, and never expired
        for log in sorted(logs_dir.rglob("*")):
            written = datetime.fromtimestamp(log.stat().st_mtime, UTC)
            if log.is_file() and written < cutoff and log != anchor:
                kind = "audit" if log in audit_files.segments(audit.audit_dir()) else "logs"
                plan.append(Expired(str(log), kind, written.date(), "delete"))
    return plan


def apply_cleanup(lake, plan: list[Expired]) -> None:
    """Carry out a plan from `plan_cleanup`."""
    filesystem, base = lake.filesystem()
    for item in plan:
        if item.kind == "audit":  # oldest first (the plan is sorted): the chain stays whole
            audit.retire(Path(item.path))
        elif item.kind == "logs":
            Path(item.path).unlink(missing_ok=True)
        elif item.action == "delete":
            filesystem.delete_dir(f"{base}/{item.path}")
        else:
            _move_folder(filesystem, f"{base}/{item.path}", f"{base}/{ARCHIVE}/{item.path}")


def _move_folder(filesystem, source: str, target: str) -> None:
    """Copy then delete: S3 has no folder rename, and pyarrow will not move one there."""
    files = filesystem.get_file_info(FileSelector(source, recursive=True))
    for info in files:
        if info.type == FileType.File:
            destination = target + info.path.removeprefix(source)
            filesystem.create_dir(destination.rsplit("/", 1)[0], recursive=True)
            filesystem.copy_file(info.path, destination)
    filesystem.delete_dir(source)
