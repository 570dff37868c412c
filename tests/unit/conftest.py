"""Unit tests run against an empty platform home, never the checkout's own."""

import pytest


@pytest.fixture(autouse=True)
def platform_home(tmp_path, monkeypatch):
    """A fresh home per test, so a stack or warehouse left in `.fraud-platform` by a run
    on this machine cannot change what a unit test sees."""
    home = tmp_path / "home"
    monkeypatch.setenv("FRAUD_PLATFORM_HOME", str(home))
    return home
