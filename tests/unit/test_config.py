import os
from pathlib import Path

import pytest

from fraud_platform.config import PROJECT_ROOT, Settings


def test_defaults_point_at_the_local_stack(monkeypatch):
    for name in [n for n in os.environ if n.startswith("FRAUD_")]:  # ports moved too
        monkeypatch.delenv(name)
    settings = Settings.from_env()
    assert settings.home == PROJECT_ROOT / ".fraud-platform"
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.flink_rest_url == "http://127.0.0.1:8081"
    assert settings.lake_root == str(PROJECT_ROOT / ".fraud-platform" / "lake")
    assert settings.warehouse_backend == "duckdb"
    assert settings.duckdb_path.endswith("fraud.duckdb")


def test_environment_overrides_hosts_ports_and_paths(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("FRAUD_PLATFORM_HOME", str(tmp_path))
    monkeypatch.setenv("FRAUD_REDIS_PORT", "7000")
    monkeypatch.setenv("FRAUD_LAKE_ROOT", "s3://lake/prefix")
    monkeypatch.setenv("FRAUD_SPARK_MASTER", "spark://cluster:7077")
    monkeypatch.setenv("FRAUD_KAFKA_BOOTSTRAP", "broker-1:9092,broker-2:9092")
    settings = Settings.from_env()
    assert settings.home == tmp_path
    assert settings.redis_url == "redis://127.0.0.1:7000/0"
    assert settings.lake_root == "s3://lake/prefix"
    assert settings.spark_master == "spark://cluster:7077"
    assert settings.kafka_bootstrap == "broker-1:9092,broker-2:9092"


def test_bad_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("FRAUD_KAFKA_PORT", "ninety")
    with pytest.raises(ValueError, match="FRAUD_KAFKA_PORT='ninety'"):
        Settings.from_env()
    monkeypatch.delenv("FRAUD_KAFKA_PORT")
    monkeypatch.setenv("FRAUD_WAREHOUSE_BACKEND", "oracle")
    with pytest.raises(ValueError, match="FRAUD_WAREHOUSE_BACKEND='oracle'"):
        Settings.from_env()
