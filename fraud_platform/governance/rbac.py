"""Role-based access control as code: the design's four roles and what each may do.

The same table drives three enforcements:
- the platform's own tools (`require`): promoting a model to production needs the
  architect's `deploy_production`, and a refusal is audited;
- Snowflake (`snowflake_statements`): one account role per platform role, granted on the
  warehouse's tables and the analyst's aggregated views;
- the embedded warehouse: an analyst connects to a separate DuckDB file that holds only the
  aggregated tables (`WarehouseResource.connect(role="analyst")`), opened read-only, so raw
  transactions are not there to be read.

Who acts is the process's OS account; the role it may act as is what the grants file gives
that account (`grants.py`); FRAUD_ROLE narrows it (default: data_engineer, who cannot deploy,
or the granted role when it holds less).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from fraud_platform.governance import grants


class Right(StrEnum):
    READ_RAW = "read_raw"  # raw and processed transactions, the lake's raw layer
    READ_TRAINING = "read_training"  # features and training sets
    READ_MODEL_METRICS = "read_model_metrics"
    READ_AGGREGATES = "read_aggregates"  # daily metrics and the aggregated views
    WRITE_PIPELINE_CONFIG = "write_pipeline_config"
    WRITE_EXPERIMENTAL_MODELS = "write_experimental_models"
    WRITE_ALL = "write_all"
    DEPLOY_STAGING = "deploy_staging"
    DEPLOY_PRODUCTION = "deploy_production"
    ERASE_USER_DATA = "erase_user_data"  # GDPR erasure


READ_ALL = {Right.READ_RAW, Right.READ_TRAINING, Right.READ_MODEL_METRICS, Right.READ_AGGREGATES}


@dataclass(frozen=True)
class Role:
    name: str
    rights: frozenset[Right]
    description: str


ROLES = {
    role.name: role
    for role in (
        Role("data_engineer", frozenset(READ_ALL | {Right.WRITE_PIPELINE_CONFIG,
             Right.ERASE_USER_DATA}), "reads all data, writes pipeline configuration; "
             "no production deployment"),
        Role("ml_engineer", frozenset({Right.READ_TRAINING, Right.READ_MODEL_METRICS,
             Right.READ_AGGREGATES, Right.WRITE_EXPERIMENTAL_MODELS, Right.DEPLOY_STAGING}),
             "reads training data and model metrics, writes experimental models, deploys to "
             "staging"),
        Role("ml_architect", frozenset(set(Right)), "reads and writes all, deploys to production"),
        Role("analyst", frozenset({Right.READ_AGGREGATES}), "reads aggregated data only"),
    )
}  # fmt: skip
DEFAULT_ROLE = "data_engineer"

# The right that reads each warehouse table; what READ_AGGREGATES reads is the analyst's.
TABLE_RIGHTS = {
    "transactions_fact": Right.READ_RAW,
    "users_dimension": Right.READ_RAW,
    "merchants_dimension": Right.READ_RAW,
    "audit_log": Right.READ_RAW,
    "model_predictions_fact": Right.READ_MODEL_METRICS,
    "daily_business_metrics": Right.READ_AGGREGATES,
    "date_dimension": Right.READ_AGGREGATES,
}
AGGREGATE_TABLES = tuple(t for t, r in TABLE_RIGHTS.items() if r is Right.READ_AGGREGATES)


def aggregates_only(role: str) -> bool:
    """Whether every warehouse table `role` may read is an aggregate (the analyst)."""
    if role not in ROLES:
        raise ValueError(f"{role!r} is not a role; use one of {', '.join(ROLES)}")
    rights = ROLES[role].rights
    return all(right is Right.READ_AGGREGATES for right in set(TABLE_RIGHTS.values()) & rights)


class AccessDenied(PermissionError):
    """An action the acting role has no right to; the text names both."""


@dataclass(frozen=True)
class Actor:
    user: str
    role: str

    @classmethod
    def current(cls) -> Actor:
        """The OS account and the role it acts as: FRAUD_ROLE if its grant covers it."""
        user = grants.os_user()
        granted = grants.load().role_of(user)
        if granted not in ROLES:
            raise ValueError(
                f"{user} holds no role in {grants.grants_path()}; ask its administrator"
            )
        asked = os.environ.get("FRAUD_ROLE", "").strip()
        if asked and asked not in ROLES:
            raise ValueError(f"FRAUD_ROLE={asked!r} is not a role; use one of {', '.join(ROLES)}")
        role = asked or (DEFAULT_ROLE if within(DEFAULT_ROLE, granted) else granted)
        if not within(role, granted):
            raise ValueError(
                f"FRAUD_ROLE={role} is more than {user} holds ({granted}, in "
                f"{grants.grants_path()}): only its administrator can grant it"
            )
        return cls(user, role)

    def can(self, right: Right) -> bool:
        return right in ROLES[self.role].rights


def within(role: str, granted: str) -> bool:
    """Whether acting as `role` needs no right `granted` lacks."""
    return ROLES[role].rights <= ROLES[granted].rights


def require(right: Right, action: str, target: str, actor: Actor | None = None) -> Actor:
    """The actor, if its role grants `right`; otherwise an audited AccessDenied."""
    from fraud_platform.governance import audit

    actor = actor or Actor.current()
    if not actor.can(right):
        audit.record(action, target, {"right": right.value}, actor=actor, outcome="denied")
        raise AccessDenied(
            f"{actor.user} ({actor.role}) may not {action} {target}: it needs {right.value}, "
            f"which only {', '.join(r.name for r in ROLES.values() if right in r.rights)} "
            "hold(s)"
        )
    return actor


def snowflake_statements(database: str, schema: str) -> list[str]:
    """The account roles and grants of the table above, idempotent (CREATE ... IF NOT EXISTS,
    GRANT is a no-op when held)."""
    where = f"{database}.{schema}"
    statements = []
    for role in ROLES.values():
        name = f"FRAUD_{role.name.upper()}"
        statements += [f"CREATE ROLE IF NOT EXISTS {name}",
                       f"GRANT USAGE ON DATABASE {database} TO ROLE {name}",
                       f"GRANT USAGE ON SCHEMA {where} TO ROLE {name}"]  # fmt: skip
        statements += [
            f"GRANT SELECT ON TABLE {where}.{table} TO ROLE {name}"
            for table, right in TABLE_RIGHTS.items()
            if right in role.rights
        ]
        if Right.WRITE_ALL in role.rights or Right.WRITE_PIPELINE_CONFIG in role.rights:
            statements += [f"GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {where} "
                           f"TO ROLE {name}"]  # fmt: skip
    return statements
