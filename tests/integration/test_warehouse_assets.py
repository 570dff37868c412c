"""The warehouse assets load the lake's days into the star schema, on both backends:
transactions with their matured labels, predictions, dimensions, daily metrics; a second
run changes nothing."""

from datetime import UTC, date, datetime

import dagster as dg
import numpy as np
import pyarrow.dataset as ds
import pytest

from assets import warehouse as assets
from assets.processed import processed_transactions
from assets.raw import raw_labels, raw_transactions
from fraud_platform.governance.pci import card_token
from fraud_platform.resources import LakeResource, SparkResource, WarehouseResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world, card_numbers, user_ids

from .lake_support import write_predictions

DAYS = ["2025-06-02", "2025-06-03", "2025-06-04"]
WAREHOUSE_ASSETS = [
    assets.users_dimension,
    assets.merchants_dimension,
    assets.date_dimension,
    assets.transactions_fact,
    assets.model_predictions_fact,
    assets.daily_business_metrics,
]
RANGE = {
    "dagster/asset_partition_range_start": DAYS[0],
    "dagster/asset_partition_range_end": DAYS[-1],
}


WORLD = build_world(seed=5, n_users=300, n_merchants=200)


@pytest.fixture(scope="module")
def lake(tmp_path_factory, spark):
    """Three simulated days processed into the lake (once), with a day of predictions."""
    lake = LakeResource(root=str(tmp_path_factory.mktemp("warehouse-lake")))
    write_history(lake, WORLD, days=3, volume=1_500, end=date(2025, 6, 5))
    write_predictions(lake, DAYS[1])
    spark_resource = SparkResource(master="local[2]", shuffle_partitions=4)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [raw_transactions, raw_labels, processed_transactions],
            instance=instance,
            resources={"lake": lake, "spark": spark_resource},
            tags=RANGE,
        )
    assert result.success
    return lake


@pytest.fixture(params=["duckdb", "snowflake"])
def warehouse(request, tmp_path):
    if request.param == "duckdb":
        return WarehouseResource(duckdb_path=str(tmp_path / "warehouse.duckdb"))
    return request.getfixturevalue("snowflake_warehouse")


def query(warehouse: WarehouseResource, sql: str) -> list[tuple]:
    with warehouse.connect() as connection:
        cursor = connection.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]


def expected_labels(lake: LakeResource) -> dict[str, bool]:
    labels = ds.dataset(f"{lake.root}/labels/fraud_investigations", format="parquet")
    table = labels.to_table(columns=["transaction_id", "is_fraud", "transaction_time"])
    first = datetime.fromisoformat(DAYS[0]).replace(tzinfo=UTC)
    return {r["transaction_id"]: r["is_fraud"] for r in table.to_pylist()
            if r["transaction_time"] >= first}  # fmt: skip


def test_the_lake_s_days_land_in_the_star_schema_once(lake, warehouse):
    for _ in range(2):  # the second run changes nothing
        with dg.instance_for_test() as instance:
            result = dg.materialize(WAREHOUSE_ASSETS, instance=instance, tags=RANGE,
                                    resources={"lake": lake, "warehouse": warehouse})  # fmt: skip
        assert result.success

    processed = ds.dataset(f"{lake.root}/processed/transactions", format="parquet")
    counts = query(
        warehouse, "SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM transactions_fact"
    )
    assert counts == [(processed.count_rows(),) * 2]
    labels = expected_labels(lake)
    assert labels and any(labels.values())
    got = dict(query(warehouse, "SELECT transaction_id, is_fraud FROM transactions_fact "
                                "WHERE is_fraud IS NOT NULL"))  # fmt: skip
    assert got == labels

    day = int(DAYS[1].replace("-", ""))
    per_day = dict(query(warehouse, "SELECT date_id, COUNT(*) FROM transactions_fact "
                                    "GROUP BY date_id"))  # fmt: skip
    assert sorted(per_day) == [int(d.replace("-", "")) for d in DAYS]
    assert query(warehouse, "SELECT COUNT(*) FROM model_predictions_fact") == [(per_day[day],)]
    assert query(warehouse, "SELECT COUNT(*) FROM date_dimension") == [(3,)]
    assert query(warehouse, "SELECT COUNT(*) FROM users_dimension") == [(300,)]
    cards = query(warehouse, "SELECT DISTINCT user_id, card_last4, card_token "
                             "FROM transactions_fact")  # fmt: skip
    numbers = dict(zip(user_ids(np.arange(WORLD.n_users)), card_numbers(WORLD), strict=True))
    assert len(cards) == len({user for user, _, _ in cards})  # one card per user, followed
    assert all(last4 == numbers[user][-4:] and token == card_token(numbers[user])
               for user, last4, token in cards)  # fmt: skip
    rows = query(warehouse, "SELECT date_id, transactions, predictions FROM daily_business_metrics")
    metrics = {row[0]: row[1:] for row in rows}
    assert metrics == {d: (n, n if d == day else 0) for d, n in per_day.items()}


def test_the_analyst_reads_the_aggregates_and_is_denied_raw_transactions(lake, tmp_path):
    import duckdb

    warehouse = WarehouseResource(duckdb_path=str(tmp_path / "warehouse.duckdb"))
    with dg.instance_for_test() as instance:
        assert dg.materialize(WAREHOUSE_ASSETS, instance=instance, tags=RANGE,
                              resources={"lake": lake, "warehouse": warehouse}).success  # fmt: skip
    with warehouse.connect(role="analyst") as analyst:
        cursor = analyst.cursor()
        cursor.execute("SELECT SUM(transactions) FROM daily_business_metrics")
        total = cursor.fetchone()[0]
        assert total == query(warehouse, "SELECT COUNT(*) FROM transactions_fact")[0][0]
        with pytest.raises(duckdb.CatalogException, match="transactions_fact"):
            cursor.execute("SELECT * FROM transactions_fact")
        with pytest.raises(duckdb.PermissionException):
            cursor.execute(f"ATTACH '{warehouse.duckdb_path}' AS raw")
        with pytest.raises(duckdb.PermissionException):
            cursor.execute(f"SELECT * FROM read_parquet('{lake.root}/raw/transactions/**')")
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            cursor.execute("DELETE FROM daily_business_metrics")


def test_the_audit_log_is_searchable_in_the_warehouse_and_a_tampered_one_is_refused(
    warehouse, governance
):
    from assets.governance import audit_log
    from fraud_platform.governance import audit
    from fraud_platform.warehouse.sources import audit_head

    # Not necessarily entry 0: the fakesnow fixture's first connection may be audited first.
    promoted = audit.record("model.promote", "2026-11-29-a", {"reason": "gate passed"})["seq"]
    for _ in range(2):  # the second load adds only the entries written since
        with dg.instance_for_test() as instance:
            assert dg.materialize([audit_log], instance=instance,
                                  resources={"warehouse": warehouse}).success  # fmt: skip
    written = list(audit.entries())
    loaded = query(warehouse, "SELECT seq, action, hash FROM audit_log ORDER BY seq")
    assert loaded == [(e["seq"], e["action"], e["hash"]) for e in written[: len(loaded)]]
    assert ("model.promote",) in query(warehouse, "SELECT action FROM audit_log")
    with warehouse.connect() as connection:  # the log's second anchor: its newest entry here
        assert audit_head(connection) == loaded[-1][::2]

    (segment,) = governance.glob("audit-*.jsonl")
    segment.write_text(segment.read_text().replace("gate passed", "gate skipped"))
    with dg.instance_for_test() as instance:
        result = dg.materialize([audit_log], instance=instance, raise_on_error=False,
                                resources={"warehouse": warehouse})  # fmt: skip
    assert not result.success
    failure = result.get_asset_materialization_events() or result.all_events
    altered = f"entry {promoted} was altered"
    assert any(altered in str(e.event_specific_data) for e in failure)


def test_the_hourly_job_loads_a_day_from_the_raw_lake_before_it_is_processed(tmp_path):
    from assets.warehouse import warehouse_hourly

    day = "2025-06-10"  # only raw data: the archiver's, before the nightly processing
    lake = LakeResource(root=str(tmp_path / "lake"))
    write_history(lake, build_world(seed=5, n_users=300, n_merchants=200), days=1,
                  volume=800, end=date(2025, 6, 11))  # fmt: skip
    predictions = write_predictions(lake, day)
    warehouse = WarehouseResource(duckdb_path=str(tmp_path / "warehouse.duckdb"))
    for _ in range(2):  # hourly: the second run adds no copies
        result = warehouse_hourly.execute_in_process(
            resources={"lake": lake, "warehouse": warehouse},
            run_config={"ops": {"refresh_today": {"config": {"day": day}}}},
        )
        assert result.success
    raw = ds.dataset(f"{lake.root}/raw/transactions/date={day}", format="parquet").count_rows()
    assert query(warehouse, "SELECT COUNT(*) FROM transactions_fact") == [(raw,)]
    assert query(warehouse, "SELECT COUNT(*) FROM model_predictions_fact") == [
        (predictions.num_rows,)
    ]
    assert query(warehouse, "SELECT transactions, predictions FROM daily_business_metrics") == [
        (raw, predictions.num_rows)
    ]
    with warehouse.connect(role="analyst") as analyst:
        assert analyst.execute("SELECT date_id FROM daily_business_metrics").fetchall() == [
            (20250610,)
        ]
