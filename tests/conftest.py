"""Shared test helpers."""

from __future__ import annotations

import pytest

from fraud_platform.stack.service import free_port


@pytest.fixture
def free_ports():
    """A factory of loopback ports nobody listens on."""
    return free_port


@pytest.fixture(autouse=True)
def alerts_file(tmp_path, monkeypatch):
    """Each test's alerts go to its own file, never to the platform's real alert log."""
    path = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("FRAUD_ALERTS_FILE", str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def session_governance(tmp_path_factory):
    """The whole session (module fixtures too) signs with test keys, acts as the architect
    (the role the orchestrator runs as) and audits away from the platform's real log."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FRAUD_AUDIT_DIR", str(tmp_path_factory.mktemp("audit")))
        for name in ("FRAUD_AUDIT_KEY", "FRAUD_CARD_TOKEN_KEY", "FRAUD_PSEUDONYM_KEY"):
            env.setenv(name, f"test-{name.lower()}")
        # No grants file: the account running the tests owns the install (every role).
        env.setenv("FRAUD_ROLES_FILE", str(tmp_path_factory.mktemp("grants") / "roles.json"))
        env.setenv("FRAUD_ROLE", "ml_architect")
        yield


@pytest.fixture(autouse=True)
def governance(tmp_path, monkeypatch):
    """Each test audits into its own log (returned), so it sees its own entries only."""
    monkeypatch.setenv("FRAUD_AUDIT_DIR", str(tmp_path / "audit"))
    return tmp_path / "audit"


def pytest_collection_modifyitems(items) -> None:
    """Tests marked `last` (the first run, which leaves live traffic and the default Flink
    jobs on the shared stack) run after every other test, whatever their file names."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
