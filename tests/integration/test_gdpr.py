"""The right to be forgotten, across every store: a user found in Redis, each lake layer
(raw, labels, predictions, processed, features, training sets, dead letters, reference,
reports, backups) and the warehouse is erased by the Dagster job and by the CLI, verified
gone (by query and as bytes), and nobody else's data changes; the audit log and the request
keep only a pseudonym. An erasure is planned, then done step by step, and resumes where a
run stopped."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from click.testing import CliRunner

from assets import warehouse as warehouse_assets
from assets.features import entity_profiles, transaction_features
from assets.governance import gdpr_erasure
from assets.processed import processed_transactions
from assets.raw import raw_labels, raw_transactions
from assets.training import training_set
from fraud_platform.cli import main
from fraud_platform.contracts import TRANSACTION
from fraud_platform.governance import audit, erasure_plan, gdpr, pan_scan
from fraud_platform.governance.erasure_stores import avro_string
from fraud_platform.lake import (
    DEAD_LETTERS_SCHEMA,
    PREDICTIONS,
    RAW_TRANSACTIONS,
    dataset,
    dead_letter_table,
    parquet_bytes,
    write_atomically,
)
from fraud_platform.recovery.backups import export_warehouse, snapshot_redis
from fraud_platform.resources import (
    FeaturesResource,
    LakeResource,
    RedisResource,
    SparkResource,
    WarehouseResource,
)
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world

from .lake_support import write_predictions

pytestmark = pytest.mark.integration
DAYS = ["2025-06-02", "2025-06-03", "2025-06-04"]
RANGE = {
    "dagster/asset_partition_range_start": DAYS[0],
    "dagster/asset_partition_range_end": DAYS[-1],
}
LAYERS = {
    "lake:raw/transactions", "lake:raw/predictions", "lake:labels/fraud_investigations",
    "lake:processed/transactions", "lake:processed/features", "lake:processed/training_sets",
    "lake:processed/aggregates", "lake:dead_letters/dlq-invalid", "lake:reference/users",
    "lake:analytics/reports",
    "redis", "warehouse:transactions_fact", "warehouse:model_predictions_fact",
    "warehouse:users_dimension",
}  # fmt: skip


def plant_dead_letter(lake: LakeResource, user_id: str) -> None:
    """A rejected record of the user, as the validator's dead-letter archive keeps it."""
    record = {"transaction_id": "dlq-1", "user_id": user_id, "merchant_id": "m", "amount": -1.0,
              "currency": "EUR", "timestamp": 1_748_900_000_000, "location": None,
              "country": "FR", "device": None, "device_id": None, "channel": None,
              "card_last4": None}  # fmt: skip
    row = {name: None for name in DEAD_LETTERS_SCHEMA.names} | {
        "transaction_id": "dlq-1", "reason": "negative_amount", "original_key": user_id.encode(),
        "original_value": TRANSACTION.encode(record),
    }  # fmt: skip
    table = dead_letter_table("dlq-invalid")
    filesystem, base = lake.filesystem()
    write_atomically(filesystem, f"{base}/{table.path}/date={DAYS[1]}/part-test.parquet",
                     parquet_bytes(pa.Table.from_pylist([row], DEAD_LETTERS_SCHEMA)))  # fmt: skip


@pytest.fixture(scope="module")
def stores(tmp_path_factory, stack, settings, spark):
    """Three processed days with features, profiles in Redis, a training set, predictions,
    a dead letter, a report, and the warehouse loaded."""
    root = tmp_path_factory.mktemp("gdpr")
    lake = LakeResource(root=str(root / "lake"))
    write_history(lake, build_world(seed=5, n_users=300, n_merchants=200), days=4,
                  volume=1_500, end=date(2025, 6, 5))  # fmt: skip
    write_predictions(lake, DAYS[1])
    redis = RedisResource(url=settings.redis_url.rsplit("/", 1)[0] + "/14")
    redis.client().flushdb()
    warehouse = WarehouseResource(duckdb_path=str(root / "warehouse.duckdb"))
    resources = {"lake": lake, "spark": SparkResource(shuffle_partitions=4), "redis": redis,
                 "warehouse": warehouse, "features": FeaturesResource()}  # fmt: skip
    with dg.instance_for_test() as instance:
        graph = [raw_transactions, raw_labels, processed_transactions, transaction_features,
                 entity_profiles]  # fmt: skip
        assert dg.materialize(graph, instance=instance, resources=resources, tags=RANGE).success
        window = {"train_days": 2, "delay_days": 0, "test_days": 1}
        assert dg.materialize(
            [training_set], instance=instance, resources=resources, partition_key=DAYS[-1],
            run_config={"ops": {"training__training_set": {"config": window}}},
        ).success  # fmt: skip
        warehouse_graph = [warehouse_assets.users_dimension, warehouse_assets.merchants_dimension,
                           warehouse_assets.date_dimension, warehouse_assets.transactions_fact,
                           warehouse_assets.model_predictions_fact]  # fmt: skip
        assert dg.materialize(warehouse_graph, instance=instance, resources=resources,
                              tags=RANGE).success  # fmt: skip
    return resources


def victim_on(lake: LakeResource, predicted_day: str) -> str:
    """A user with a prediction (and so a row in nearly every layer) not taken yet."""
    predictions = dataset(lake, f"{PREDICTIONS.path}/date={predicted_day}").to_table()
    predicted = set(predictions["transaction_id"].to_pylist())
    raw = dataset(lake, RAW_TRANSACTIONS.path).to_table(columns=["transaction_id", "user_id"])
    labelled = set(dataset(lake, "labels/fraud_investigations").to_table()["transaction_id"]
                   .to_pylist())  # fmt: skip
    for row in raw.to_pylist():
        if row["transaction_id"] in predicted & labelled:
            return row["user_id"]
    raise AssertionError("no user with a labelled, predicted transaction")


def plant(stores, user_id: str) -> None:
    lake, client = stores["lake"], stores["redis"].client()
    plant_dead_letter(lake, user_id)
    client.hset(f"user:{user_id}:agg:1h", mapping={"count": 3})
    filesystem, base = lake.filesystem()
    report = {"top_users": [user_id, "user_somebody_else"], "note": f"{user_id} spiked"}
    write_atomically(filesystem, f"{base}/analytics/reports/top-users-{len(user_id)}.json",
                     json.dumps(report).encode())  # fmt: skip


def others(lake: LakeResource, user_id: str) -> int:
    table = dataset(lake, RAW_TRANSACTIONS.path).to_table(columns=["user_id"])
    return sum(1 for u in table["user_id"].to_pylist() if u != user_id)


def assert_forgotten(stores, user_id: str, before_others: int, audit_dir) -> None:
    lake = stores["lake"]
    left = gdpr.find_traces(lake, stores["redis"].client(), stores["warehouse"], user_id)
    assert left.counts == {}
    assert others(lake, user_id) == before_others  # nobody else's rows changed
    alias = gdpr.pseudonym(user_id)
    (request,) = [r for r in gdpr.requests(lake) if r["pseudonym"] == alias]
    assert request["status"] == "verified" and request["days_left"] >= 29
    filesystem, base = lake.filesystem()
    with filesystem.open_input_stream(f"{base}/{gdpr.REQUESTS}") as f:
        assert user_id not in f.read().decode()
    erased = [e for e in audit.entries() if e["action"] == "gdpr.erase" and e["target"] == alias]
    assert erased and erased[-1]["outcome"] == "ok"
    assert all(user_id not in p.read_text() for p in audit_dir.glob("audit-*.jsonl"))


def test_the_dagster_job_forgets_a_user_in_every_store(stores, governance):
    lake = stores["lake"]
    user_id = victim_on(lake, DAYS[1])
    plant(stores, user_id)
    found = gdpr.find_traces(lake, stores["redis"].client(), stores["warehouse"], user_id)
    assert set(found.counts) >= LAYERS  # the user is everywhere before (and in files)
    before_others = others(lake, user_id)

    request = gdpr.receive(lake, user_id)
    result = gdpr_erasure.execute_in_process(
        resources={k: stores[k] for k in ("lake", "redis", "warehouse")},
        run_config={"ops": {"erase_user_data": {"config": {"request_id": request["request_id"]}}}},
    )
    assert result.success and result.output_for_node("erase_user_data") == "verified"
    assert_forgotten(stores, user_id, before_others, governance)
    text = next(Path(lake.root).glob("analytics/reports/top-users-*.json")).read_text()
    assert user_id not in text and gdpr.pseudonym(user_id) in text
    assert "user_somebody_else" in text


def test_the_cli_forgets_a_user_and_verifies_it(stores, governance, monkeypatch):
    lake = stores["lake"]
    user_id = victim_on(lake, DAYS[1])  # the first victim has no rows left to be chosen
    plant(stores, user_id)
    before_others = others(lake, user_id)
    monkeypatch.setenv("FRAUD_LAKE_ROOT", lake.root)
    monkeypatch.setenv("FRAUD_REDIS_URL", stores["redis"].url)
    monkeypatch.setenv("FRAUD_DUCKDB_PATH", stores["warehouse"].duckdb_path)
    runner = CliRunner()
    assert runner.invoke(main, ["gdpr", "verify", "--user", user_id]).exit_code == 1
    erased = runner.invoke(main, ["gdpr", "erase", "--user", user_id])
    assert erased.exit_code == 0, erased.output
    assert runner.invoke(main, ["gdpr", "verify", "--user", user_id]).exit_code == 0
    assert_forgotten(stores, user_id, before_others, governance)


def test_a_denied_erasure_keeps_no_request(stores, monkeypatch):
    """Refused before any request is kept: the clear id is written nowhere."""
    monkeypatch.setenv("FRAUD_LAKE_ROOT", stores["lake"].root)
    monkeypatch.setenv("FRAUD_ROLE", "analyst")
    denied = CliRunner().invoke(main, ["gdpr", "erase", "--user", "user_denied_x"])
    assert denied.exit_code != 0
    filesystem, base = stores["lake"].filesystem()
    requests = gdpr.read_json(filesystem, f"{base}/{gdpr.REQUESTS}") or []
    assert all(r.get("user_id") != "user_denied_x" for r in requests)


def test_an_analyst_may_not_erase(stores, monkeypatch):
    request = gdpr.receive(stores["lake"], "user_nobody")
    monkeypatch.setenv("FRAUD_ROLE", "analyst")
    from fraud_platform.governance.rbac import AccessDenied

    with pytest.raises(AccessDenied, match="erase_user_data"):
        gdpr.erase(stores["lake"], stores["redis"].client(), stores["warehouse"],
                   request["request_id"])  # fmt: skip


def test_empty_and_null_typed_parquet_files_neither_crash_erase_nor_verify(stores, governance):
    """The warehouse export of a table with no rows is a 0-row, null-typed Parquet file."""
    lake = stores["lake"]
    filesystem, base = lake.filesystem()
    folder = f"{base}/backups/warehouse/20250606T000000Z"
    filesystem.create_dir(folder, recursive=True)
    empty = pa.table({"transaction_id": pa.nulls(0), "user_id": pa.nulls(0)})
    nulls = pa.table({"transaction_id": pa.nulls(2), "user_id": pa.nulls(2)})
    write_atomically(filesystem, f"{folder}/empty.parquet", parquet_bytes(empty))
    write_atomically(filesystem, f"{folder}/nulls.parquet", parquet_bytes(nulls))
    client, warehouse = stores["redis"].client(), stores["warehouse"]
    assert gdpr.find_traces(lake, client, warehouse, "user_nobody_here").counts == {}
    ids = pa.array(["t-none"])
    assert gdpr.scan_lake(lake, "user_nobody_here", ids, erase=True).counts == {}


class Interrupted(RuntimeError):
    pass


def test_an_interrupted_erasure_resumes_where_it_stopped(stores, governance, monkeypatch, tmp_path):
    """A step that raises stops the run (audited as failed, the request kept); the rerun
    finishes from that step, the steps done not run again."""
    lake, client, warehouse = stores["lake"], stores["redis"].client(), stores["warehouse"]
    user_id = victim_on(lake, DAYS[1])
    plant(stores, user_id)
    request = gdpr.receive(lake, user_id)

    def broken(scope, erase):
        if erase:
            raise Interrupted("the machine went away")
        return 1

    monkeypatch.setitem(erasure_plan.STEPS, "warehouse_file", broken)
    with pytest.raises(gdpr.ErasureError, match="warehouse_file"):
        gdpr.erase(lake, client, warehouse, request["request_id"], dagster_home=tmp_path)
    progress = erasure_plan.load_progress(lake, request["request_id"])
    assert set(progress["planned"]) == set(erasure_plan.STEPS)
    assert any(p.startswith("lake-bytes:raw/transactions/") for p in progress["places"])
    assert user_id not in json.dumps(progress)  # the pseudonym and transaction ids only
    assert list(progress["done"]) == ["flink_state", "lake", "lake_redis_backups", "redis",
                                      "redis_files", "warehouse"]  # fmt: skip
    steps = [e for e in audit.entries() if e["action"] == "gdpr.erase.step"]
    assert steps[-1]["outcome"] == "failed" and steps[-1]["target"] == gdpr.pseudonym(user_id)
    monkeypatch.undo()
    monkeypatch.setenv("FRAUD_AUDIT_DIR", str(governance))
    done = gdpr.erase(lake, client, warehouse, request["request_id"], dagster_home=tmp_path)
    assert done["status"] == "verified"
    ran = [e["details"]["step"] for e in audit.entries() if e["action"] == "gdpr.erase.step"]
    assert ran.count("lake") == 1 and ran.count("warehouse_file") == 2  # failed, then done
    assert ran[-3:] == ["warehouse_file", "dagster", "logs"]
    assert all(user_id not in p.read_text() for p in governance.glob("audit-*.jsonl"))


@dg.op
def mention(context: dg.OpExecutionContext) -> None:
    context.log.info(f"previewing {context.op_config}")


@dg.job
def previews() -> None:
    """A run whose event log names the user, as a preview of a personal column would."""
    mention()


def test_the_erasure_reaches_every_copy_and_verify_reads_bytes(stores, governance, tmp_path):
    """Redis snapshots and warehouse exports in the lake, keys in another Redis database,
    the DuckDB file's bytes and Dagster's event log: verify finds the user in each, the
    erasure removes every one, other users' keys stay in the snapshot."""
    lake, client, warehouse = stores["lake"], stores["redis"].client(), stores["warehouse"]
    user_id = victim_on(lake, DAYS[1])
    plant(stores, user_id)
    other_db = pan_scan.on_database(client, 13)
    other_db.set(f"user:{user_id}:note", "x")
    other_db.set("user:somebody:note", "kept")
    snapshot_redis(client, lake)
    filesystem, base = lake.filesystem()
    original = f"{base}/dead_letters/originals/{len(user_id):064d}.bin"  # an oversized record
    write_atomically(filesystem, original, b"\x02" + avro_string(user_id) + b"\x00" * 64)
    with warehouse.connect() as connection:
        export_warehouse(connection, lake, datetime(2025, 6, 6, tzinfo=UTC))
    home = tmp_path / "dagster"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        previews.execute_in_process(
            instance=instance, run_config={"ops": {"mention": {"config": user_id}}}
        )
    found = gdpr.find_traces(lake, client, warehouse, user_id, dagster_home=home).counts
    assert "redis:db13" in found
    assert any(p.startswith("lake-bytes:backups/redis/") for p in found)
    assert any(p.startswith("lake:backups/warehouse") for p in found)
    assert any(p.startswith(f"files:{home}") for p in found)  # Dagster's event log
    assert f"files:{warehouse.duckdb_path}" in found
    assert "lake:dead_letters/originals" in found

    request = gdpr.receive(lake, user_id)
    done = gdpr.erase(lake, client, warehouse, request["request_id"], dagster_home=home)
    assert done["status"] == "verified"
    assert gdpr.find_traces(lake, client, warehouse, user_id, dagster_home=home).counts == {}
    assert user_id.encode() not in Path(warehouse.duckdb_path).read_bytes()
    assert all(user_id.encode() not in p.read_bytes() for p in home.rglob("*") if p.is_file())
    rdb = next(Path(lake.root).glob("backups/redis/*.rdb")).read_bytes()
    assert user_id.encode() not in rdb and b"user:somebody:note" in rdb
    assert not filesystem.get_file_info(original).is_file
    other_db.delete("user:somebody:note")
