"""RBAC as code: only the architect may put a model in production, the refusal is audited,
and the Snowflake grants give the analyst the aggregated tables and nothing raw."""

import pytest

from fraud_platform.governance import audit, grants
from fraud_platform.governance.grants import GrantsError, os_user
from fraud_platform.governance.rbac import (
    ROLES,
    AccessDenied,
    Actor,
    aggregates_only,
    snowflake_statements,
)
from fraud_platform.models import registry
from fraud_platform.resources import LakeResource


def candidate(root, version: str) -> LakeResource:
    lake = LakeResource(root=str(root))
    registry.save_candidate(lake, version, b"{}", {"version": version})
    return lake


@pytest.mark.parametrize("role", ["data_engineer", "ml_engineer", "analyst"])
def test_only_the_architect_may_promote_to_production(tmp_path, monkeypatch, role):
    lake = candidate(tmp_path, "2026-11-29-a")
    monkeypatch.setenv("FRAUD_ROLE", role)
    with pytest.raises(AccessDenied, match=f"{os_user()} \\({role}\\) may not model.promote"):
        registry.promote(lake, "2026-11-29-a", "looks good")
    assert registry.current_version(lake) is None
    (denial,) = audit.entries()
    assert (denial["action"], denial["outcome"], denial["role"]) == (
        "model.promote",
        "denied",
        role,
    )


def test_a_promotion_by_the_architect_is_audited(tmp_path):
    lake = candidate(tmp_path, "2026-11-29-a")
    registry.promote(lake, "2026-11-29-a", "gate passed")
    assert registry.current_version(lake) == "2026-11-29-a"
    assert registry.history(lake)[-1]["by"] == f"{os_user()} (ml_architect)"
    (entry,) = audit.entries()
    assert (entry["action"], entry["target"], entry["outcome"]) == (
        "model.promote",
        "2026-11-29-a",
        "ok",
    )


def test_an_unknown_role_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("FRAUD_ROLE", "superuser")
    with pytest.raises(ValueError, match="FRAUD_ROLE='superuser' is not a role"):
        Actor.current()


def test_the_analyst_alone_reads_aggregates_only():
    assert [name for name in ROLES if aggregates_only(name)] == ["analyst"]
    with pytest.raises(ValueError, match="'auditor' is not a role"):
        aggregates_only("auditor")


def test_snowflake_grants_give_the_analyst_no_raw_table():
    statements = snowflake_statements("FRAUD", "ANALYTICS")
    analyst = [s for s in statements if s.endswith("TO ROLE FRAUD_ANALYST")]
    granted = {s.split(" ON TABLE ")[1].split(" ")[0] for s in analyst if "SELECT" in s}
    assert granted == {"FRAUD.ANALYTICS.daily_business_metrics", "FRAUD.ANALYTICS.date_dimension"}
    assert not any("INSERT" in s for s in analyst)
    engineer = [s for s in statements if s.endswith("TO ROLE FRAUD_DATA_ENGINEER")]
    raw = "GRANT SELECT ON TABLE FRAUD.ANALYTICS.transactions_fact TO ROLE FRAUD_DATA_ENGINEER"
    assert raw in engineer
    assert "CREATE ROLE IF NOT EXISTS FRAUD_ML_ARCHITECT" in statements


def test_a_role_cannot_be_raised_by_its_holder(tmp_path, monkeypatch):
    """The analyst's grant is in a file only its administrator writes: FRAUD_ROLE may narrow
    it, never raise it, and the warehouse cannot be opened as a higher role either."""
    from fraud_platform.resources import WarehouseResource

    path = tmp_path / "roles.json"
    monkeypatch.setenv("FRAUD_ROLES_FILE", str(path))
    grants.grant(os_user(), "analyst", path)
    monkeypatch.delenv("FRAUD_ROLE")
    assert Actor.current().role == "analyst"  # the grant, as nothing narrower was asked
    for higher in ("data_engineer", "ml_architect"):
        monkeypatch.setenv("FRAUD_ROLE", higher)
        with pytest.raises(ValueError, match=r"more than .* holds \(analyst"):
            Actor.current()
    monkeypatch.setenv("FRAUD_ROLE", "analyst")
    warehouse = WarehouseResource(duckdb_path=str(tmp_path / "w.duckdb"))
    with (
        pytest.raises(AccessDenied, match="may not connect as data_engineer"),
        warehouse.connect(role="data_engineer"),
    ):
        pass
    monkeypatch.setenv("FRAUD_ACTOR", "someone-else")  # no variable names the account
    monkeypatch.setenv("USER", "root-admin")
    monkeypatch.setenv("LOGNAME", "root-admin")
    assert Actor.current().user == os_user()


def test_the_architect_may_act_as_less(tmp_path, monkeypatch):
    path = tmp_path / "roles.json"
    monkeypatch.setenv("FRAUD_ROLES_FILE", str(path))
    grants.grant(os_user(), "ml_architect", path)
    monkeypatch.setenv("FRAUD_ROLE", "analyst")
    assert Actor.current().role == "analyst"


def test_a_grants_file_others_can_write_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "roles.json"
    monkeypatch.setenv("FRAUD_ROLES_FILE", str(path))
    grants.grant("alice", "analyst", path)
    path.chmod(0o666)
    with pytest.raises(GrantsError, match="can be written by others"):
        Actor.current()


def test_only_the_owner_of_the_grants_file_may_change_it(tmp_path, monkeypatch):
    path = tmp_path / "roles.json"
    grants.grant("alice", "analyst", path)
    monkeypatch.setattr(grants.os, "getuid", lambda: 54_321)  # another account
    with pytest.raises(GrantsError, match=r"who owns .* may change the grants"):
        grants.grant("alice", "ml_architect", path)
    assert grants.load(path).users == {"alice": "analyst"}
