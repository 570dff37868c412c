"""Shared test helpers."""

from __future__ import annotations

import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture(autouse=True)
def governance(tmp_path, monkeypatch):
    """Each test audits into its own log, signs with test keys, and acts as the architect
    (the role the orchestrator runs as) unless it says otherwise."""
    monkeypatch.setenv("FRAUD_AUDIT_DIR", str(tmp_path / "audit"))
    monkeypatch.setenv("FRAUD_AUDIT_KEY", "test-audit-key")
    monkeypatch.setenv("FRAUD_CARD_TOKEN_KEY", "test-card-token-key")
    monkeypatch.setenv("FRAUD_ACTOR", "pytest")
    monkeypatch.setenv("FRAUD_ROLE", "ml_architect")
    return tmp_path / "audit"
