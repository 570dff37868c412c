"""The simulator: deterministic, rhythmic, with every fraud scenario and late labels."""

from datetime import date

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import epoch_day, write_history
from fraud_platform.simulation.reference import build_world, users_table
from fraud_platform.simulation.traffic import DAY_MS, SCENARIOS, distance_km, generate_day

DAY = epoch_day(date(2025, 3, 3))  # a Monday


@pytest.fixture(scope="module")
def world():
    return build_world(seed=11, n_users=2_000, n_merchants=3_000)


@pytest.fixture(scope="module")
def week(world):
    return [generate_day(world, DAY + i, volume=20_000) for i in range(7)]


def test_same_seed_same_day_same_payments(world):
    a, b = generate_day(world, DAY, 5_000), generate_day(world, DAY, 5_000)
    assert a.transactions.equals(b.transactions) and a.labels.equals(b.labels)
    other = generate_day(build_world(seed=12, n_users=2_000, n_merchants=3_000), DAY, 5_000)
    assert not other.transactions.equals(a.transactions)


def test_every_scenario_appears_and_fraud_is_rare(week):
    scenario = np.concatenate([d.scenario for d in week])
    seen = {SCENARIOS[s] for s in np.unique(scenario)}
    assert seen == set(SCENARIOS)
    assert 0.002 < (scenario > 0).mean() < 0.03


def test_daily_and_weekly_rhythm(week):
    hours = np.concatenate([pc.hour(d.transactions["timestamp"]).to_numpy() for d in week])
    night, afternoon = np.isin(hours, [2, 3, 4]).sum(), np.isin(hours, [12, 13, 14]).sum()
    assert afternoon > 8 * night
    saturday, sunday = week[5].transactions.num_rows, week[6].transactions.num_rows
    assert saturday > 1.15 * sunday


def test_labels_are_late_sparse_and_cover_every_fraud(week):
    for day in week:
        labels = day.labels
        frauds = int((day.scenario > 0).sum())
        assert pc.sum(labels["is_fraud"]).as_py() == frauds
        assert labels.num_rows < 0.05 * day.transactions.num_rows
        delay = (
            pc.subtract(
                pc.cast(labels["investigation_complete_time"], "int64"),
                pc.cast(labels["transaction_time"], "int64"),
            ).to_numpy()
            / DAY_MS
        )
        assert delay.min() >= 1 and delay.max() <= 30


def test_takeovers_use_a_new_device_far_from_home(world, week):
    users = users_table(world).to_pandas().set_index("user_id")
    for day in week:
        rows = day.transactions.filter(np.asarray(day.scenario == 4)).to_pylist()
        assert len(rows) == 12
        for row in rows:
            assert row["device_id"].startswith("ato_")
            home = users.loc[row["user_id"]]
            assert distance_km(row["lat"], row["lon"], home.home_lat, home.home_lon) > 2500


def test_only_the_last_four_card_digits(week):
    lengths = pc.utf8_length(week[0].transactions["card_last4"])
    assert pc.all(pc.equal(lengths, 4)).as_py()


def test_history_writes_hourly_partitions_idempotently(world, tmp_path):
    lake = LakeResource(root=str(tmp_path))
    end = date(2025, 3, 5)
    payments, labels = write_history(lake, world, days=2, volume=3_000, end=end)
    raw = tmp_path / "raw" / "transactions"
    assert len(list(raw.glob("date=*/hour=*"))) == 48
    dataset = ds.dataset(raw, format="parquet", partitioning="hive")
    assert dataset.count_rows() == payments
    completed = ds.dataset(tmp_path / "labels", format="parquet", partitioning="hive").to_table()
    assert completed.num_rows == labels
    cutoff = pc.cast(completed["investigation_complete_time"], "int64").to_numpy()
    assert (cutoff < epoch_day(end) * DAY_MS).all()  # no label from the future

    again = write_history(lake, world, days=2, volume=3_000, end=end)
    assert again == (payments, labels)
    assert ds.dataset(raw, format="parquet", partitioning="hive").count_rows() == payments
    assert (tmp_path / "reference" / "users" / "sim11.parquet").exists()
