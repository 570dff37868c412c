"""Platform settings, read once from the environment with local defaults.

Every host, port, path and secret the platform uses comes from here, so the same code runs
against the local stack (the defaults) and against a cluster (environment variables only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number; unset it or give one") from None


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the local stack; each can be moved with FRAUD_<NAME>_PORT."""

    redis: int = 6379
    kafka: int = 9092
    kafka_controller: int = 9093
    flink_rest: int = 8081
    flink_rpc: int = 6123
    dagster: int = 3000
    validator_metrics: int = 9308
    docs: int = 3080  # the lake's reports (quality dashboard, Data Docs) over HTTP

    @classmethod
    def from_env(cls) -> Ports:
        defaults = cls()
        return cls(
            **{
                name: _env_int(f"FRAUD_{name.upper()}_PORT", getattr(defaults, name))
                for name in cls.__dataclass_fields__
            }
        )


@dataclass(frozen=True)
class Settings:
    """Where the platform keeps its state and how it reaches each service."""

    home: Path
    ports: Ports = field(default_factory=Ports)
    kafka_bootstrap: str = ""
    redis_url: str = ""
    flink_rest_url: str = ""
    lake_root: str = ""
    spark_master: str = "local[2]"
    warehouse_backend: str = "duckdb"
    duckdb_path: str = ""
    s3_endpoint_url: str = ""
    flink_checkpoint_interval: str = "60s"
    label_delay_days: int = 7  # how long fraud labels take; the label features' shift
    roles_file: str = ""  # who holds which role (governance/grants.py)
    audit_dir: str = ""  # the audit log's day files (governance/audit.py)
    audit_anchor: str = ""  # the chain's anchored head, kept apart from the log
    docs_url: str = ""  # where the lake's analytics/ folder is served (stack service docs)

    def __post_init__(self) -> None:
        # Derived defaults: the clients point at the local stack unless told otherwise.
        defaults = {
            "kafka_bootstrap": f"{LOOPBACK}:{self.ports.kafka}",
            "redis_url": f"redis://{LOOPBACK}:{self.ports.redis}/0",
            "flink_rest_url": f"http://{LOOPBACK}:{self.ports.flink_rest}",
            "lake_root": str(self.home / "lake"),
            "duckdb_path": str(self.home / "warehouse" / "fraud.duckdb"),
            "roles_file": str(self.home / "governance" / "roles.json"),
            "audit_dir": str(self.home / "logs" / "audit"),
            "docs_url": f"http://{LOOPBACK}:{self.ports.docs}",
        }
        for name, value in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        if not self.audit_anchor:  # beside the log's folder, not in it: a cut folder keeps it
            object.__setattr__(
                self, "audit_anchor", str(Path(self.audit_dir).parent / "audit-anchor.json")
            )
        if self.warehouse_backend not in ("duckdb", "snowflake"):
            raise ValueError(
                f"FRAUD_WAREHOUSE_BACKEND={self.warehouse_backend!r} is unknown; "
                "use 'duckdb' or 'snowflake'"
            )

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            home=Path(_env("FRAUD_PLATFORM_HOME", str(PROJECT_ROOT / ".fraud-platform"))),
            ports=Ports.from_env(),
            kafka_bootstrap=_env("FRAUD_KAFKA_BOOTSTRAP", ""),
            redis_url=_env("FRAUD_REDIS_URL", ""),
            flink_rest_url=_env("FRAUD_FLINK_REST_URL", ""),
            lake_root=_env("FRAUD_LAKE_ROOT", ""),
            spark_master=_env("FRAUD_SPARK_MASTER", "local[2]"),
            warehouse_backend=_env("FRAUD_WAREHOUSE_BACKEND", "duckdb"),
            duckdb_path=_env("FRAUD_DUCKDB_PATH", ""),
            s3_endpoint_url=_env("FRAUD_S3_ENDPOINT_URL", ""),
            flink_checkpoint_interval=_env("FRAUD_FLINK_CHECKPOINT_INTERVAL", "60s"),
            label_delay_days=_env_int("FRAUD_LABEL_DELAY_DAYS", 7),
            roles_file=_env("FRAUD_ROLES_FILE", ""),
            audit_dir=_env("FRAUD_AUDIT_DIR", ""),
            audit_anchor=_env("FRAUD_AUDIT_ANCHOR", ""),
            docs_url=_env("FRAUD_DOCS_URL", ""),
        )
