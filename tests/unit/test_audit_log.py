"""The audit log: a hash chain that verifies as written, and names the first entry that was
altered, removed, reordered or forged; concurrent writers keep one chain."""

import itertools
import json
import multiprocessing
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraud_platform.governance import audit
from fraud_platform.governance.grants import os_user
from fraud_platform.governance.rbac import Actor


def write_entries(count: int = 5) -> list[dict]:
    return [audit.record("data.read", f"lake/raw/{i}", {"rows": i}) for i in range(count)]


def rewrite(directory, transform) -> None:
    """Apply `transform` to the list of entries of the (single) day file."""
    (segment,) = directory.glob("audit-*.jsonl")
    entries = [json.loads(line) for line in segment.read_text().splitlines()]
    segment.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in transform(entries)))


def test_an_untouched_log_verifies(governance):
    written = write_entries()
    assert [e["seq"] for e in written] == [0, 1, 2, 3, 4]
    assert written[0]["previous"] == audit.GENESIS
    assert all(b["previous"] == a["hash"] for a, b in itertools.pairwise(written))
    assert written[2]["actor"] == os_user() and written[2]["role"] == "ml_architect"
    result = audit.verify()
    assert result.ok and result.entries == 5


def altered(entries):
    entries[2]["details"]["rows"] = 999
    return entries


def removed(entries):
    return entries[:2] + entries[3:]


def reordered(entries):
    return [entries[0], entries[2], entries[1], *entries[3:]]


def forged(entries):
    """A forger who re-chains the rest without the key: every hash looks self-consistent."""
    entries[2]["outcome"] = "denied"
    previous = entries[1]["hash"]
    for entry in entries[2:]:
        entry["previous"] = previous
        body = {k: v for k, v in entry.items() if k != "hash"}
        entry["hash"] = audit._digest(b"a guessed key", previous, body)
        previous = entry["hash"]
    return entries


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (altered, "entry 2 was altered"),
        (removed, "entry 3 does not follow entry 1"),
        (reordered, "entry 2 does not follow entry 0"),
        (forged, "entry 2 was altered"),
    ],
)
def test_a_tampered_record_is_detected(governance, tamper, expected):
    write_entries()
    rewrite(governance, tamper)
    result = audit.verify()
    assert not result.ok
    assert expected in result.problem


def test_details_are_redacted_before_they_are_written(governance):
    entry = audit.record("data.read", "x", {"note": "card 4111 1111 1111 1111 of a@b.com"})
    assert entry["details"]["note"] == "card ****1111 of <email>"
    assert "4111 1111" not in next(governance.glob("audit-*.jsonl")).read_text()


def _append(count: int) -> None:
    for i in range(count):
        audit.record("data.read", f"worker/{i}", actor=Actor("worker", "data_engineer"))


def test_concurrent_processes_keep_one_chain(governance):
    workers = [multiprocessing.Process(target=_append, args=(25,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result = audit.verify()
    assert result.ok and result.entries == 100


def test_setting_and_role_changes_are_audited(tmp_path, monkeypatch):
    from fraud_platform.config import Settings
    from fraud_platform.governance import rbac

    settings = Settings(home=tmp_path)
    assert audit.note_changes(settings) == []  # the first look only remembers
    moved = Settings(home=tmp_path, lake_root="s3://lake/prod")
    (change,) = audit.note_changes(moved)
    assert change["action"] == "config.change"
    assert change["details"]["lake_root"]["to"] == "s3://lake/prod"

    wider = rbac.Role("analyst", frozenset({rbac.Right.READ_AGGREGATES, rbac.Right.READ_RAW}), "")
    monkeypatch.setitem(rbac.ROLES, "analyst", wider)
    (grant,) = audit.note_changes(moved)
    assert grant["action"] == "permission.change"
    assert grant["details"]["analyst"]["to"] == ["read_aggregates", "read_raw"]
    assert audit.note_changes(moved) == []


def test_the_verify_command_fails_on_a_tampered_log(governance):
    from click.testing import CliRunner

    from fraud_platform.cli import main

    write_entries()
    assert CliRunner().invoke(main, ["audit", "verify"]).exit_code == 0
    rewrite(governance, removed)
    outcome = CliRunner().invoke(main, ["audit", "verify"])
    assert outcome.exit_code == 1
    assert "does not follow" in outcome.output


def test_a_finished_dagster_run_is_audited(governance):
    import dagster as dg

    from sensors.audit import audit_run

    @dg.asset
    def probe() -> int:
        return 1

    with dg.instance_for_test() as instance:
        result = dg.materialize([probe], instance=instance, tags={"dagster/user": "jane"})
        entry = audit_run(instance, instance.get_run_by_id(result.run_id), "succeeded")
    assert (entry["actor"], entry["action"], entry["outcome"]) == ("jane", "dagster.run",
                                                                   "succeeded")  # fmt: skip
    assert entry["details"]["assets"] == ["probe"]


def test_an_unset_key_is_generated_once_owner_only(tmp_path, monkeypatch):
    from fraud_platform.config import Settings
    from fraud_platform.governance.secrets import signing_key

    monkeypatch.delenv("FRAUD_AUDIT_KEY")
    settings = Settings(home=tmp_path)
    key = signing_key("FRAUD_AUDIT_KEY", settings)
    assert len(key) == 64 and signing_key("FRAUD_AUDIT_KEY", settings) == key
    stored = tmp_path / "secrets" / "fraud_audit_key"
    assert stored.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("FRAUD_AUDIT_KEY", "from-the-environment")
    assert signing_key("FRAUD_AUDIT_KEY", settings) == b"from-the-environment"


def day_file(directory):
    (segment,) = directory.glob("audit-*.jsonl")
    return segment


def truncated(entries):
    return entries[:3]


def head_deleted(entries):
    return entries[2:]


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        (truncated, "the log ends at entry 2, but its anchor holds entries up to 4"),
        (head_deleted, "the log starts at entry 2, but its anchor starts it at entry 0"),
        (lambda entries: [], "the log is empty, but its anchor holds entries 0 to 4"),
    ],
    ids=["last entries cut", "first entries deleted", "file emptied"],
)
def test_a_log_cut_at_either_end_is_detected(governance, cut, expected):
    write_entries()
    rewrite(governance, cut)
    result = audit.verify()
    assert not result.ok
    assert expected in result.problem


def test_a_day_file_renamed_is_detected(governance):
    write_entries()
    segment = day_file(governance)
    segment.rename(governance / "audit-2020-01-01.jsonl")
    assert "the day file was renamed" in audit.verify().problem
    (governance / "audit-2020-01-01.jsonl").rename(governance / "kept.jsonl.bak")  # out of sight
    assert "the log is empty" in audit.verify().problem


def test_a_cut_stays_reported_after_later_entries_until_an_architect_reanchors(governance):
    from click.testing import CliRunner

    from fraud_platform.cli import main

    write_entries()
    rewrite(governance, truncated)
    audit.record("data.read", "after the cut")  # the next writer finds the cut, then goes on
    assert "the last 2 were cut" in audit.verify().problem
    assert [e["action"] for e in audit.entries()][-2:] == ["audit.cut", "data.read"]
    outcome = CliRunner().invoke(main, ["audit", "anchor"])
    assert outcome.exit_code == 1 and "cut found" in outcome.output

    assert CliRunner().invoke(main, ["audit", "anchor", "--reset"]).exit_code == 0
    assert audit.verify().ok
    reset = next(e for e in audit.entries() if e["action"] == "audit.anchor_reset")
    assert "the last 2 were cut" in reset["details"]["cuts_forgotten"][0]


def test_an_altered_or_removed_anchor_is_detected(governance):
    write_entries()
    anchor = audit.anchor_path()
    stored = json.loads(anchor.read_text())
    anchor.write_text(json.dumps({**stored, "head_seq": 2}))  # to fit a cut log
    assert "its MAC does not match" in audit.verify().problem
    anchor.unlink()
    assert "is missing" in audit.verify().problem


def test_an_older_anchor_put_back_is_caught_by_the_warehouse_head(governance):
    write_entries()
    older = audit.anchor_path().read_text()
    newest = audit.record("model.promote", "v2")  # loaded into the warehouse, then cut
    segment = day_file(governance)
    segment.write_text("".join(segment.read_text().splitlines(keepends=True)[:5]))
    audit.anchor_path().write_text(older)
    assert audit.verify().ok  # the file alone cannot tell
    result = audit.verify(heads={"warehouse": (newest["seq"], newest["hash"])})
    assert "the warehouse holds entries up to 5: the log was cut" in result.problem


def test_a_torn_last_line_is_set_aside_and_no_command_fails(governance):
    from click.testing import CliRunner

    from fraud_platform.cli import main

    write_entries()
    torn = b'{"action": "data.read", "seq": 5, "tar'
    with day_file(governance).open("ab") as f:
        f.write(torn)
    result = audit.verify()
    assert result.ok and result.entries == 5 and "torn write" in result.notes[0]

    for command in (["rbac", "roles"], ["audit", "verify"]):
        outcome = CliRunner().invoke(main, command)
        assert outcome.exit_code == 0, outcome.output
    assert "torn line(s) set aside" in outcome.output
    (kept,) = (governance / "torn").glob("*.partial")
    assert kept.read_bytes() == torn
    aside = next(e for e in audit.entries() if e["action"] == "audit.torn_write")
    assert aside["seq"] == 5 and aside["details"]["bytes"] == len(torn)
    assert audit.verify().ok


class LongAgo(datetime):
    """The clock of a day whose file the retention policy has come for."""

    @classmethod
    def now(cls, tz=None):
        return datetime(2020, 1, 1, 12, tzinfo=UTC)


def test_retention_retires_the_oldest_day_file_and_the_shorter_chain_verifies(
    governance, tmp_path, monkeypatch
):
    from fraud_platform.governance.retention import apply_cleanup, plan_cleanup
    from fraud_platform.resources import LakeResource

    with monkeypatch.context() as clock:
        clock.setattr(audit, "datetime", LongAgo)
        write_entries(3)
    write_entries(2)
    oldest = governance / "audit-2020-01-01.jsonl"
    with pytest.raises(ValueError, match="oldest first"):
        audit.retire(max(governance.glob("audit-*.jsonl")))

    os.utime(oldest, (0, 0))
    plan = plan_cleanup(LakeResource(root=str(tmp_path / "lake")), logs_dir=tmp_path)
    assert [(Path(item.path), item.kind) for item in plan] == [(oldest, "audit")]
    apply_cleanup(LakeResource(root=str(tmp_path / "lake")), plan)
    assert not oldest.exists()
    result = audit.verify()
    assert result.ok and result.entries == 3  # two of today's, and the retirement's own
    assert audit.anchor().base_seq == 3


def test_a_day_file_deleted_without_retention_is_detected(governance, monkeypatch):
    with monkeypatch.context() as clock:
        clock.setattr(audit, "datetime", LongAgo)
        write_entries(3)
    write_entries(2)
    (governance / "audit-2020-01-01.jsonl").unlink()
    assert "its first entries were removed" in audit.verify().problem
