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
