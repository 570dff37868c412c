"""The promotion rule, the post-training gate, and promote / rollback in the registry."""

import pytest

from fraud_platform.models import registry
from fraud_platform.models.gate import Thresholds, gate_failures, promotion_decision
from fraud_platform.resources import LakeResource

GOOD = {"average_precision": 0.62, "predicted_positive_share": 0.01}


def test_the_gate_rejects_one_class_models_and_weak_precision():
    thresholds = Thresholds(review=0.5, min_average_precision=0.1)
    assert gate_failures(GOOD, thresholds) == []
    one_class = {"average_precision": 0.5, "predicted_positive_share": 0.0}
    assert "predicts one class only" in gate_failures(one_class, thresholds)[0]
    weak = {"average_precision": 0.02, "predicted_positive_share": 0.01}
    assert "below the floor" in gate_failures(weak, thresholds)[0]


def test_promotion_needs_a_better_model_that_passes_the_gate():
    thresholds = Thresholds()
    assert promotion_decision(GOOD, None, thresholds) == (True, "no production model yet")
    worse = {**GOOD, "average_precision": 0.4}
    promote, reason = promotion_decision(worse, GOOD, thresholds)
    assert not promote and "not better than production" in reason
    assert promotion_decision(GOOD, worse, thresholds)[0]
    failing = {**GOOD, "predicted_positive_share": 1.0}
    assert promotion_decision(failing, worse, thresholds)[1].startswith("gate failed")


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
