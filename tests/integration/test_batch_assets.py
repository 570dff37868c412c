"""The batch lineage on real Spark and a real lake: raw -> processed -> features."""

import re
from datetime import date

import dagster as dg
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from assets.features import entity_profiles, transaction_features
from assets.processed import processed_transactions
from assets.raw import raw_labels, raw_transactions
from fraud_platform.features.catalog import CATALOG
from fraud_platform.lake import RAW_TRANSACTIONS_SCHEMA
from fraud_platform.resources import FeaturesResource, LakeResource, RedisResource, SparkResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world

pytestmark = pytest.mark.integration
DAYS = ["2025-03-03", "2025-03-04", "2025-03-05"]
GRAPH = [
    raw_transactions,
    raw_labels,
    processed_transactions,
    transaction_features,
    entity_profiles,
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch-lake")
    lake = LakeResource(root=str(root))
    world = build_world(seed=3, n_users=400, n_merchants=600)
    write_history(lake, world, days=5, volume=2_000, end=date(2025, 3, 6))
    return lake


def materialize(lake, spark_session, partition_range: tuple[str, str], redis=None):
    spark = SparkResource(master="local[2]", shuffle_partitions=4)
    redis = redis or RedisResource(url="redis://127.0.0.1:6379/15")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            GRAPH,
            instance=instance,
            resources={
                "lake": lake,
                "spark": spark,
                "redis": redis,
                "features": FeaturesResource(),
            },
            tags={
                "dagster/asset_partition_range_start": partition_range[0],
                "dagster/asset_partition_range_end": partition_range[1],
            },
        )
    assert result.success
    return result


def features_table(lake):
    return (
        ds.dataset(f"{lake.root}/processed/features", format="parquet", partitioning="hive")
        .to_table()
        .sort_by("transaction_id")
    )


def test_three_days_in_one_run_then_idempotent(stack, settings, lake, spark):
    redis = RedisResource(url=settings.redis_url.rsplit("/", 1)[0] + "/15")
    redis.client().flushdb()
    result = materialize(lake, spark, (DAYS[0], DAYS[-1]), redis)
    processed = result.asset_materializations_for_node("processed__transactions")
    assert len(processed) == 3  # one materialization per day, from one Spark run
    meta = processed[0].metadata
    assert meta["rows"].value > 0 and meta["bytes"].value > 0 and "preview" in meta
    # No user id (user_000042) in what Dagster's UI serves.
    assert not re.search(r"user_\d{6}", meta["preview"].value)

    first = features_table(lake)
    assert sorted(set(first["date"].to_pylist())) == DAYS
    raw_rows = sum(
        ds.dataset(f"{lake.root}/raw/transactions/date={d}", format="parquet").count_rows()
        for d in DAYS
    )
    assert first.num_rows == raw_rows  # no duplicates in simulated data
    assert {f.name for f in CATALOG} <= set(first.column_names)
    # Day two sees day one's history: the 24h count is not always zero there.
    day_two = first.filter(ds.field("date") == DAYS[1])
    assert max(day_two["user_transaction_count_24h"].to_pylist()) > 0

    materialize(lake, spark, (DAYS[1], DAYS[1]), redis)  # re-materialize one partition
    assert features_table(lake).equals(first)


def test_processed_device_ids_are_pseudonyms_equal_for_equal_devices(stack, lake, spark):
    materialize(lake, spark, (DAYS[0], DAYS[0]))
    columns = ["transaction_id", "device_id"]
    raw = ds.dataset(f"{lake.root}/raw/transactions/date={DAYS[0]}").to_table(columns=columns)
    processed = ds.dataset(f"{lake.root}/processed/transactions/date={DAYS[0]}").to_table(
        columns=columns
    )
    device_of = dict(zip(*raw.to_pydict().values(), strict=True))
    pairs = {(device_of[t], d) for t, d in zip(*processed.to_pydict().values(), strict=True)
             if device_of[t] is not None}  # fmt: skip
    raw_devices = {r for r, _ in pairs}
    assert len(raw_devices) > 10
    assert len(pairs) == len(raw_devices) == len({p for _, p in pairs})  # one-to-one
    assert all(len(p) == 64 and p not in raw_devices for _, p in pairs)


def test_raw_files_from_before_the_card_token_are_processed_with_the_new_ones(
    stack, tmp_path, spark
):
    """Raw files the archiver wrote under transaction v1 have no `card_token` column. A day
    holding both kinds is processed whole: the old rows read a null token, the new ones keep
    theirs (whichever file Spark happens to sample first)."""
    lake = LakeResource(root=str(tmp_path / "lake"))
    write_history(lake, build_world(seed=8, n_users=200, n_merchants=100), days=1,
                  volume=600, end=date.fromisoformat(DAYS[1]))  # fmt: skip
    files = sorted((tmp_path / "lake/raw/transactions" / f"date={DAYS[0]}").rglob("*.parquet"))
    old = files[: len(files) // 2]
    for path in old:
        pq.write_table(pq.read_table(path).drop_columns(["card_token"]), path)
    old_ids = {t for path in old for t in pq.read_table(path)["transaction_id"].to_pylist()}
    materialize(lake, spark, (DAYS[0], DAYS[0]))

    raw = ds.dataset(files, format="parquet", schema=RAW_TRANSACTIONS_SCHEMA).to_table()
    processed = ds.dataset(f"{lake.root}/processed/transactions/date={DAYS[0]}").to_table()
    token_of = dict(zip(raw["transaction_id"].to_pylist(), raw["card_token"].to_pylist(),
                        strict=True))  # fmt: skip
    got = dict(zip(processed["transaction_id"].to_pylist(), processed["card_token"].to_pylist(),
                   strict=True))  # fmt: skip
    assert old_ids and len(got) == raw.num_rows
    assert got == token_of
    assert {t for t, token in got.items() if token is None} == old_ids


def test_profiles_land_in_the_lake_and_in_redis(stack, settings, lake, spark):
    redis = RedisResource(url=settings.redis_url.rsplit("/", 1)[0] + "/15")
    redis.client().flushdb()
    materialize(lake, spark, (DAYS[-1], DAYS[-1]), redis)
    users = ds.dataset(f"{lake.root}/processed/aggregates/users/date={DAYS[-1]}").to_table()
    client = redis.client()
    assert client.dbsize() > 0
    row = users.slice(0, 1).to_pylist()[0]
    profile = client.hgetall(f"user:{row['user_id']}:profile")
    assert float(profile[b"transaction_count_90d"]) == row["transaction_count_90d"]
    assert 0 < client.ttl(f"user:{row['user_id']}:profile") <= 7 * 86_400
    merchants = ds.dataset(f"{lake.root}/processed/aggregates/merchants/date={DAYS[-1]}").to_table()
    assert client.exists(f"merchant:{merchants['merchant_id'][0].as_py()}")
