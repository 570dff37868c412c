"""The retention policy on a local lake: what is past its time goes (deleted or archived),
what is not stays, a dry run only lists, and the production model is never archived."""

import os
import time
from datetime import date

from fraud_platform.governance.retention import (
    ARCHIVE,
    apply_cleanup,
    lifecycle_rules,
    plan_cleanup,
)
from fraud_platform.models import registry
from fraud_platform.resources import LakeResource

TODAY = date(2026, 11, 30)


def touch(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"{}")


def build_lake(root) -> LakeResource:
    for day in ("2019-11-01", "2019-12-15", "2026-11-29"):  # 7 years: the first goes
        touch(root / "raw/transactions" / f"date={day}" / "hour=00" / "part-0.parquet")
    touch(root / "dead_letters/dlq-invalid/date=2019-10-01/part-0.parquet")
    for day in ("2026-08-01", "2026-09-15"):  # 90 days: the first goes
        touch(root / "processed/training_sets" / f"date={day}" / "part-0.parquet")
    for version in ("2025-10-01-a", "2025-10-02-b", "2026-06-01-c"):  # 1 year, then archive
        touch(root / registry.CANDIDATES / version / "model.json")
        touch(root / registry.CANDIDATES / version / "metadata.json")
    lake = LakeResource(root=str(root))
    registry.promote(lake, "2025-10-02-b", "still in production")
    return lake


def test_the_plan_names_what_the_policy_retires(tmp_path):
    lake = build_lake(tmp_path)
    plan = {(item.path, item.action) for item in plan_cleanup(lake, TODAY)}
    assert plan == {
        ("raw/transactions/date=2019-11-01", "delete"),
        ("dead_letters/dlq-invalid/date=2019-10-01", "delete"),
        ("processed/training_sets/date=2026-08-01", "delete"),
        (f"{registry.CANDIDATES}/2025-10-01-a", "archive"),
    }  # the production model 2025-10-02-b is a year old too, and stays


def test_a_dry_run_changes_nothing_and_applying_the_plan_carries_it_out(tmp_path):
    lake = build_lake(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    plan = plan_cleanup(lake, TODAY)  # what a dry run prints
    assert sorted(p for p in tmp_path.rglob("*")) == before

    apply_cleanup(lake, plan)
    assert not (tmp_path / "raw/transactions/date=2019-11-01").exists()
    assert (tmp_path / "raw/transactions/date=2019-12-15").exists()
    assert not (tmp_path / "processed/training_sets/date=2026-08-01").exists()
    archived = tmp_path / ARCHIVE / registry.CANDIDATES / "2025-10-01-a"
    assert sorted(p.name for p in archived.iterdir()) == ["metadata.json", "model.json"]
    assert not (tmp_path / registry.CANDIDATES / "2025-10-01-a").exists()
    assert plan_cleanup(lake, TODAY) == []


def test_logs_older_than_90_days_are_deleted(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    old, fresh = tmp_path / "logs/kafka.log.1", tmp_path / "logs/kafka.log"
    touch(old)
    touch(fresh)
    long_ago = time.time() - 91 * 86400
    os.utime(old, (long_ago, long_ago))
    plan = plan_cleanup(lake, TODAY, logs_dir=tmp_path / "logs")
    assert [(item.path, item.kind) for item in plan] == [(str(old), "logs")]
    apply_cleanup(lake, plan)
    assert not old.exists() and fresh.exists()


def test_lifecycle_rules_cover_every_tier_under_the_lake_prefix():
    rules = {r["Filter"]["Prefix"]: r for r in lifecycle_rules("lake/prod/")}
    assert "lake/prod/raw/transactions/" in rules
    for rule in rules.values():
        expiry = rule.get("Expiration", {}).get("Days")
        last_move = max((t["Days"] for t in rule.get("Transitions", [])), default=0)
        assert expiry is None or expiry > last_move  # S3 refuses expiring before moving


def test_the_dagster_job_lists_on_a_dry_run_then_retires(tmp_path, monkeypatch):
    from dagster_aws.s3 import S3Resource

    from assets.governance import retention_cleanup

    monkeypatch.setenv("FRAUD_PLATFORM_HOME", str(tmp_path / "home"))
    lake = build_lake(tmp_path / "lake")
    resources = {"lake": lake, "s3": S3Resource()}
    old = tmp_path / "lake/raw/transactions/date=2019-11-01"  # more than 7 years before today
    for dry_run, still_there in ((True, True), (False, False)):
        result = retention_cleanup.execute_in_process(
            resources=resources,
            run_config={"ops": {"enforce_retention": {"config": {"dry_run": dry_run}}}},
        )
        assert result.success and result.output_for_node("enforce_retention") >= 3
        assert old.exists() is still_there
