"""The audit log: a hash chain that verifies as written, and names the first entry that was
altered, removed, reordered or forged; concurrent writers keep one chain."""

import itertools
import json
import multiprocessing

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
