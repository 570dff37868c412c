"""The PAN scanner: clean stores pass, and a card number planted in Kafka, the lake, Redis or
the warehouse is caught where it was planted, reported masked; the command fails on it."""

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner

from fraud_platform.cli import main
from fraud_platform.config import Settings
from fraud_platform.contracts import TRANSACTION
from fraud_platform.governance import pan_scan
from fraud_platform.lake import RAW_TRANSACTIONS_SCHEMA, parquet_bytes, write_atomically
from fraud_platform.resources import LakeResource, RedisResource, WarehouseResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world
from fraud_platform.warehouse.loading import upsert
from fraud_platform.warehouse.schema import TRANSACTIONS_FACT, create_tables

from .ingestion_support import transaction

pytestmark = pytest.mark.integration
PAN = "4111 1111 1111 1111"  # a Luhn-valid test number


@pytest.fixture
def stores(tmp_path, stack, settings, topics):
    lake = LakeResource(root=str(tmp_path / "lake"))
    write_history(lake, build_world(seed=5, n_users=300, n_merchants=200), days=1,
                  volume=1_000, end=date(2025, 6, 5))  # fmt: skip
    redis = RedisResource(url=settings.redis_url.rsplit("/", 1)[0] + "/13")
    client = redis.client()
    client.flushdb()
    client.hset("user:user_1:profile", mapping={"avg_amount_30d": 42.5, "home_country": "FR"})
    client.set("model:version", "2025-06-04-a1b2c3")
    warehouse = WarehouseResource(duckdb_path=str(tmp_path / "warehouse.duckdb"))
    now = 1_749_000_000_000
    records = [transaction(i, now, topics.prefix) for i in range(200)]
    topics.produce("transactions-raw", [(r["user_id"].encode(), TRANSACTION.encode(r))
                                        for r in records])  # fmt: skip
    with warehouse.connect() as connection:
        create_tables(connection)
        upsert(connection, "duckdb", TRANSACTIONS_FACT, fact_rows(records))
    return {"lake": lake, "redis": client, "warehouse": warehouse, "topics": topics}


def fact_rows(records: list[dict]) -> pa.Table:
    from datetime import UTC, datetime

    return pa.Table.from_pylist([
        {"transaction_id": r["transaction_id"], "user_id": r["user_id"],
         "merchant_id": r["merchant_id"], "date_id": 20250604,
         "transaction_time": datetime.fromtimestamp(r["timestamp"] / 1000, UTC)
         .replace(tzinfo=None), "amount": r["amount"], "currency": r["currency"],
         "country": r["country"], "channel": r["channel"], "card_last4": r["card_last4"],
         "card_token": r["card_token"], "declined": False, "is_fraud": None, "fraud_type": None,
         "labelled_at": None}
        for r in records
    ])  # fmt: skip


def scan_all(stores, settings) -> list[pan_scan.Finding]:
    return [
        *pan_scan.scan_kafka(settings.kafka_bootstrap, prefix=stores["topics"].prefix),
        *pan_scan.scan_lake(stores["lake"]),
        *pan_scan.scan_redis(stores["redis"]),
        *pan_scan.scan_warehouse(stores["warehouse"]),
    ]


def test_clean_stores_pass_and_each_planted_card_number_is_caught(stores, settings):
    assert scan_all(stores, settings) == []

    leaked = transaction(999, 1_749_000_000_000, stores["topics"].prefix, card_last4=PAN)
    stores["topics"].produce("transactions-raw", [(b"user_9", TRANSACTION.encode(leaked))])
    row = {n: None for n in RAW_TRANSACTIONS_SCHEMA.names} | {"transaction_id": "t-1",
                                                                "card_last4": PAN}  # fmt: skip
    filesystem, base = stores["lake"].filesystem()
    hour = f"{base}/raw/transactions/date=2025-06-04/hour=10"
    planted = pa.Table.from_pylist([row], RAW_TRANSACTIONS_SCHEMA)
    write_atomically(filesystem, f"{hour}/part-x.parquet", parquet_bytes(planted))
    stores["redis"].hset("user:user_2:profile", mapping={"note": f"card {PAN}"})
    with stores["warehouse"].connect() as connection:
        upsert(connection, "duckdb", TRANSACTIONS_FACT, fact_rows([leaked]))

    findings = scan_all(stores, settings)
    found = {f.store: f for f in findings}
    assert len(findings) == len(found) == 4  # one per store, where it was planted
    assert {f.masked for f in findings} == {"****1111"}
    assert found["kafka"].where.startswith(stores["topics"].name("transactions-raw"))
    assert found["lake"].where == f"{hour.removeprefix(base + '/')}/part-x.parquet:card_last4"
    assert found["redis"].where == "db13 user:user_2:profile"
    assert found["warehouse"].where == "transactions_fact.card_last4"


def test_redis_is_scanned_in_every_database_and_keys_are_reported_masked(stores):
    client = pan_scan.on_database(stores["redis"], 14)
    client.flushdb()
    client.set(f"merchant:{PAN.replace(' ', '')}", "1")
    try:
        findings = pan_scan.scan_redis(stores["redis"])
    finally:
        client.flushdb()
    assert [(f.where, f.masked) for f in findings] == [
        ("db14 key merchant:************1111", "****1111")
    ]


def test_the_files_of_every_service_are_scanned_byte_for_byte(stores, tmp_path):
    """Redis's snapshot (written uncompressed), Flink's checkpoints, the warehouse file and
    the logs, with a number right after an Avro length byte that reads as a digit."""
    home = tmp_path / "home"
    settings = Settings(home=home)
    digits = PAN.replace(" ", "")
    redis = stores["redis"]
    redis.set(f"merchant:{digits}:profile", "x" * 40)  # long enough for LZF to compress
    redis.save()
    snapshot = Path(redis.config_get("dir")["dir"]) / redis.config_get("dbfilename")["dbfilename"]
    (home / "redis" / "data").mkdir(parents=True)
    shutil.copy(snapshot, home / "redis" / "data" / "dump.rdb")
    avro = TRANSACTION.encode(transaction(1, 1_749_000_000_000, "p", device=f"{digits}-store-1"))
    assert b"0" + digits.encode() in avro  # the length byte of 24 characters is "0"
    (home / "flink" / "checkpoints" / "job" / "chk-1").mkdir(parents=True)
    (home / "flink" / "checkpoints" / "job" / "chk-1" / "state").write_bytes(b"\x01" + avro)
    (home / "logs").mkdir()
    (home / "logs" / "validator.log").write_text(f"charging {PAN} now\n")
    (home / "warehouse").mkdir()
    with duckdb.connect(str(home / "warehouse" / "fraud.duckdb")) as connection:
        connection.execute(f"CREATE TABLE t AS SELECT '{digits}' AS v")

    places = {f.where.split("@")[0] for f in pan_scan.scan_files(settings)}
    assert places >= {"redis/data/dump.rdb", "flink/checkpoints/job/chk-1/state",
                      "logs/validator.log", "warehouse/fraud.duckdb"}  # fmt: skip
    redis.delete(f"merchant:{digits}:profile")


def test_the_scan_command_fails_on_a_card_number(stores, monkeypatch):
    monkeypatch.setenv("FRAUD_LAKE_ROOT", stores["lake"].root)
    runner = CliRunner()
    assert runner.invoke(main, ["pci", "scan", "--store", "lake"]).exit_code == 0
    filesystem, base = stores["lake"].filesystem()
    write_atomically(filesystem, f"{base}/analytics/export.csv", f"user_1,{PAN}\n".encode())
    outcome = runner.invoke(main, ["pci", "scan", "--store", "lake"])
    assert outcome.exit_code == 1
    assert "4111 1111" not in outcome.output


def test_the_scan_needs_raw_access(stores, monkeypatch):
    monkeypatch.setenv("FRAUD_LAKE_ROOT", stores["lake"].root)
    monkeypatch.setenv("FRAUD_ROLE", "analyst")
    outcome = CliRunner().invoke(main, ["pci", "scan", "--store", "lake"])
    assert outcome.exit_code == 1
    assert "denied" in outcome.output and "read_raw" in outcome.output
    assert "scanning" not in outcome.output
