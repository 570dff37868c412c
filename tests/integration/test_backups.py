"""Backups in the lake, proven by restoring them: the Redis snapshot loads into a
redis-server of its own, the warehouse export holds every row, the registry copy is
byte-identical; and the inventory tells a fresh backup from a stale or missing one."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest

from fraud_platform.models import registry
from fraud_platform.recovery import backups
from fraud_platform.recovery.restore import SnapshotServer
from fraud_platform.resources import LakeResource
from fraud_platform.warehouse.loading import upsert
from fraud_platform.warehouse.schema import TABLES, TRANSACTIONS_FACT

from .test_warehouse import transactions

pytestmark = pytest.mark.integration


@pytest.fixture
def lake(tmp_path) -> LakeResource:
    return LakeResource(root=str(tmp_path / "lake"))


def test_the_redis_snapshot_in_the_lake_restores_every_key(resources, lake, unique):
    client = resources["redis"].client()
    written = {f"backup-test:{unique}:{i}": str(i) for i in range(500)}
    client.mset(written)
    client.hset(f"backup-test:{unique}:hash", mapping={"amount_avg": "12.5"})
    try:
        copy = backups.snapshot_redis(client, lake)
    finally:
        client.delete(*written, f"backup-test:{unique}:hash")
    filesystem, base = lake.filesystem()
    assert copy.path.startswith(f"{base}/{backups.REDIS_BACKUPS}/") and copy.bytes > 0
    with filesystem.open_input_stream(copy.path) as stream:
        rdb = stream.read()
    assert rdb[:5] == b"REDIS" and len(rdb) == copy.bytes

    with SnapshotServer(rdb) as restored:  # a redis-server of its own, started from the copy
        assert restored.mget(list(written)) == [v.encode() for v in written.values()]
        assert restored.hgetall(f"backup-test:{unique}:hash") == {b"amount_avg": b"12.5"}


def test_the_warehouse_export_holds_every_table_and_row(warehouse, lake):
    connection, backend = warehouse
    rows = transactions(25)
    upsert(connection, backend, TRANSACTIONS_FACT, rows)
    copy = backups.export_warehouse(connection, lake, datetime(2026, 11, 30, 5, 31, tzinfo=UTC))
    filesystem, base = lake.filesystem()
    assert copy.path == f"{base}/{backups.WAREHOUSE_BACKUPS}/20261130T053100Z"
    assert copy.files == len(TABLES)
    exported = pq.read_table(f"{copy.path}/{TRANSACTIONS_FACT.name}.parquet",
                             filesystem=filesystem)  # fmt: skip
    assert exported.column_names == TRANSACTIONS_FACT.column_names
    assert sorted(exported.column("transaction_id").to_pylist()) == sorted(
        rows.column("transaction_id").to_pylist()
    )
    for table in TABLES:
        assert filesystem.get_file_info(f"{copy.path}/{table.name}.parquet").is_file


def test_the_model_registry_copy_is_identical_and_an_empty_registry_is_refused(lake):
    with pytest.raises(backups.BackupError, match="empty"):
        backups.export_models(lake, datetime.now(UTC))
    registry.save_candidate(lake, "v1", b'{"learner": 1}', {"metrics": {"auc": 0.9}})
    registry.promote(lake, "v1", "first model")
    copy = backups.export_models(lake, datetime(2026, 11, 30, tzinfo=UTC))
    filesystem, base = lake.filesystem()
    originals = [f"{registry.CANDIDATES}/v1/model.json", f"{registry.CANDIDATES}/v1/metadata.json",
                 registry.CURRENT, registry.HISTORY]  # fmt: skip
    assert copy.files == len(originals)
    for name in originals:
        with (
            filesystem.open_input_stream(f"{base}/{name}") as original,
            filesystem.open_input_stream(f"{copy.path}/{name}") as copied,
        ):
            assert copied.read() == original.read()


def test_the_inventory_tells_fresh_stale_and_missing_backups(lake, tmp_path):
    home = tmp_path / "home"
    (home / "redis" / "data").mkdir(parents=True)
    (home / "redis" / "data" / "dump.rdb").write_bytes(b"REDIS0011")
    now = datetime.now(UTC)
    by_kind = {h.kind: h for h in backups.inventory(home, lake)}
    assert by_kind["redis RDB"].status(now) == "ok" and by_kind["redis RDB"].copies == 1
    assert by_kind["redis snapshots (lake)"].status(now) == "missing"
    assert by_kind["flink savepoints"].status(now) == "none"  # none taken is no fault

    registry.save_candidate(lake, "v1", b"{}", {})
    for taken in (now - timedelta(hours=30), now):
        backups.export_models(lake, taken)
    by_kind = {h.kind: h for h in backups.inventory(home, lake)}
    exports = by_kind["model registry exports (lake)"]
    assert exports.copies == 2 and exports.status(now) == "ok"
    assert exports.age(now) < timedelta(minutes=1)
    # A daily copy is stale once two days pass with no newer one.
    assert exports.status(now + timedelta(days=1, hours=23)) == "ok"
    assert exports.status(now + timedelta(days=2, minutes=1)) == "stale"


def test_dagster_takes_the_backups_and_its_restore_job_puts_a_lost_key_back(resources, lake,
                                                                            unique):  # fmt: skip
    from assets.recovery import model_registry_export, redis_restore, redis_snapshot

    client = resources["redis"].client()
    key = f"backup-test:{unique}:lost"
    client.set(key, "kept in the snapshot", px=600_000)
    registry.save_candidate(lake, "v1", b"{}", {})
    result = dg.materialize([redis_snapshot, model_registry_export],
                            resources={"redis": resources["redis"], "lake": lake})  # fmt: skip
    assert result.success
    snapshot = result.asset_materializations_for_node("backups__redis_snapshot")[0].metadata
    assert snapshot["files"].value == 1 and snapshot["bytes"].value > 0
    client.delete(key)

    run = redis_restore.execute_in_process(resources={"redis": resources["redis"], "lake": lake})
    assert run.success
    assert client.get(key) == b"kept in the snapshot"
    assert 0 < client.pttl(key) <= 600_000
    restored = run.output_for_node("restore_redis_snapshot")
    assert restored >= 1
    client.delete(key)


def test_the_commands_name_what_is_missing_and_exit_1(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fraud_platform.cli import main

    monkeypatch.setenv("FRAUD_PLATFORM_HOME", str(tmp_path / "home"))
    restored = CliRunner().invoke(main, ["restore", "redis"])
    assert restored.exit_code == 1
    assert "no Redis snapshot under" in restored.output and "backup redis" in restored.output
    listed = CliRunner().invoke(main, ["backup", "inventory"])
    assert listed.exit_code == 1
    assert "redis snapshots (lake)" in listed.output and "missing" in listed.output
