"""Promote and roll back in the registry (the promotion rule is layer 5: see
test_quality_suites and test_quality_checks_in_dagster)."""

import pytest

from fraud_platform.models import registry
from fraud_platform.resources import LakeResource


def test_promote_and_roll_back(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    for version in ("v1", "v2"):
        registry.save_candidate(lake, version, b"{}", {"version": version})
    with pytest.raises(registry.RegistryError, match="nothing to roll back"):
        registry.rollback(lake)
    registry.promote(lake, "v1", "first")
    with pytest.raises(registry.RegistryError, match="v1 was the first production model"):
        registry.rollback(lake)
    registry.promote(lake, "v2", "better")
    assert registry.current_version(lake) == "v2"
    assert registry.rollback(lake) == "v1"
    assert registry.current_version(lake) == "v1"
    assert [e["action"] for e in registry.history(lake)] == ["promote", "promote", "rollback"]
    with pytest.raises(registry.RegistryError, match="no model 'v9'"):
        registry.promote(lake, "v9", "missing")
