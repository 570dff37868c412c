"""Every command that reads raw data or erases checks its right first: as an analyst it stops
with the reason before doing anything, and leaves nothing behind (no request naming the
user in clear)."""

import pytest
from click.testing import CliRunner

from fraud_platform.cli import main

DENIED = [
    (["gdpr", "erase", "--user", "user_000042"], "erase_user_data"),
    (["gdpr", "request", "--user", "user_000042"], "erase_user_data"),
    (["gdpr", "verify", "--user", "user_000042"], "read_raw"),
    (["pci", "scan", "--store", "lake"], "read_raw"),
    (["audit", "show"], "read_raw"),
    (["retention", "cleanup", "--dry-run"], "read_raw"),
]


@pytest.mark.parametrize(("command", "right"), DENIED)
def test_an_analyst_is_stopped_before_anything_is_done(command, right, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    monkeypatch.setenv("FRAUD_LAKE_ROOT", str(lake))
    monkeypatch.setenv("FRAUD_ROLE", "analyst")
    outcome = CliRunner().invoke(main, command)
    assert outcome.exit_code == 1, outcome.output
    assert "denied" in outcome.output and right in outcome.output
    assert not lake.exists()  # no request, no scan state, nothing
    assert "user_000042" not in outcome.output


@pytest.mark.parametrize("command", [["gdpr", "erase", "--user", "user_000042"],
                                     ["gdpr", "verify", "--user", "user_000042"]])  # fmt: skip
def test_an_erasure_with_the_stack_down_says_so_and_keeps_nothing(command, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    monkeypatch.setenv("FRAUD_LAKE_ROOT", str(lake))
    monkeypatch.setenv("FRAUD_REDIS_PORT", "1")  # nothing listens there
    outcome = CliRunner().invoke(main, command)
    assert outcome.exit_code == 1, outcome.output
    assert "Redis is not reachable" in outcome.output and "start the stack" in outcome.output
    assert "Traceback" not in outcome.output
    assert not (lake / "governance").exists()  # no request received
