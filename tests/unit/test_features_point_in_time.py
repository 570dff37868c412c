"""Point in time, on hand-made cases: nothing later, and no label not yet known, leaks in."""

from datetime import UTC, datetime

import pytest

from fraud_platform.features.catalog import BY_NAME, CATALOG, MODEL_FEATURES
from fraud_platform.features.sql import compute_features

T0 = int(datetime(2025, 3, 3, 12, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
COLUMNS = (
    "transaction_id string, user_id string, merchant_id string, amount double, "
    "ts_ms bigint, lat double, lon double, country string, device_id string, channel string, "
    "declined boolean, home_lat double, home_lon double, merchant_category string, "
    "merchant_risk_tier string"
)


def txn(tid, user, merchant, amount, ts, device="d1", declined=False, country="FR"):
    return (tid, user, merchant, amount, ts, 48.85, 2.35, country, device, "card_present",
            declined, 48.85, 2.35, "grocery", "low")  # fmt: skip


@pytest.fixture(scope="module")
def spark():
    from fraud_platform.spark import get_spark

    return get_spark("local[2]", {"spark.sql.shuffle.partitions": "4"})


def features(spark, rows, labels=()):
    frame = spark.createDataFrame(rows, COLUMNS).selectExpr(
        "*", "timestamp_millis(ts_ms) AS `timestamp`"
    )
    label_frame = spark.createDataFrame(
        list(labels) or [("none", False, 0)],
        "transaction_id string, is_fraud boolean, complete_ms bigint",
    )
    return {
        r["transaction_id"]: r.asDict()
        for r in compute_features(spark, frame, label_frame).collect()
    }


def test_windows_see_only_strictly_earlier_events(spark):
    rows = [
        txn("a", "u", "m1", 10.0, T0),
        txn("b", "u", "m2", 20.0, T0 + 10 * MIN, device="d2"),
        txn("c", "u", "m1", 30.0, T0 + 10 * MIN),  # same millisecond as b
        txn("d", "u", "m1", 40.0, T0 + 2 * HOUR),
    ]
    f = features(spark, rows)
    assert f["a"]["user_transaction_count_24h"] == 0 and f["a"]["user_avg_amount_24h"] is None
    assert f["a"]["seconds_since_last_transaction"] is None
    for same_time in ("b", "c"):  # they do not see each other
        assert f[same_time]["user_transaction_count_1h"] == 1
        assert f[same_time]["user_total_spend_1h"] == 10.0
        assert f[same_time]["seconds_since_last_transaction"] == 600.0
    assert f["d"]["user_transaction_count_1h"] == 0
    assert f["d"]["user_transaction_count_24h"] == 3
    assert f["d"]["user_max_amount_24h"] == 30.0
    assert f["d"]["user_distinct_merchants_24h"] == 2
    assert f["d"]["amount_to_user_avg_30d"] == pytest.approx(40.0 / 20.0)
    assert f["d"]["merchant_transaction_volume_24h"] == 2  # a and c at m1
    assert f["d"]["distance_from_home_km"] == pytest.approx(0.0, abs=1e-6)


def test_a_later_event_never_changes_an_earlier_row(spark):
    early = [txn("a", "u", "m1", 10.0, T0), txn("b", "u", "m1", 20.0, T0 + HOUR)]
    later = [txn("z", "u", "m9", 5000.0, T0 + HOUR + 1, device="new", country="JP")]
    before, after = features(spark, early), features(spark, early + later)
    for tid in ("a", "b"):
        assert before[tid] == after[tid]


def test_device_changes_are_counted_per_switch(spark):
    rows = [
        txn("a", "u", "m", 1.0, T0, device="d1"),
        txn("b", "u", "m", 1.0, T0 + MIN, device="d2"),
        txn("c", "u", "m", 1.0, T0 + 2 * MIN, device="d2"),
        txn("d", "u", "m", 1.0, T0 + 3 * MIN, device="d1"),
        txn("e", "u", "m", 1.0, T0 + 4 * MIN, device="d1"),
    ]
    f = features(spark, rows)
    assert [f[t]["user_device_change_count_1h"] for t in "abcde"] == [0, 0, 1, 1, 2]


def test_a_label_feature_sees_frauds_a_label_delay_old_and_only_once_known(spark):
    """The Handbook's delayed window: frauds among the merchant's transactions of [t - 7d - w,
    t - 7d), counted only once their label is known, and never one inside the delay."""
    delay = 7 * DAY
    rows = [
        txn("fraud", "u1", "m", 100.0, T0),
        txn("genuine", "u2", "m", 10.0, T0 + HOUR),
        txn("not_yet_known", "u3", "m", 10.0, T0 + delay + 2 * HOUR),
        txn("recent_fraud", "u4", "m", 10.0, T0 + delay + 3 * HOUR),
        txn("known", "u5", "m", 10.0, T0 + delay + 6 * HOUR),
        txn("card_again", "u1", "elsewhere", 10.0, T0 + delay + 6 * HOUR),
        txn("elsewhere", "u6", "other", 10.0, T0 + delay + 6 * HOUR),
        txn("a_day_later", "u7", "m", 10.0, T0 + delay + DAY + 7 * HOUR),
    ]
    labels = [
        ("fraud", True, T0 + delay + 5 * HOUR),  # known 5 hours after the delay
        ("fraud", True, T0 + delay + 9 * HOUR),  # a second verdict: the same fraud
        ("recent_fraud", True, T0 + delay + 4 * HOUR),  # known fast, but within the delay
        ("genuine", False, T0 + 2 * HOUR),
    ]
    f = features(spark, rows, labels)
    assert f["not_yet_known"]["merchant_delayed_volume_7d"] == 2  # fraud and genuine
    assert f["not_yet_known"]["merchant_fraud_count_7d"] == 0  # its label comes later
    assert f["not_yet_known"]["seconds_since_merchant_first_fraud"] is None
    known = f["known"]
    assert known["merchant_fraud_count_7d"] == 1 and known["merchant_fraud_count_30d"] == 1
    assert known["merchant_fraud_risk_7d"] == pytest.approx(1 / 2)
    assert known["seconds_since_merchant_first_fraud"] == (delay + 6 * HOUR) / 1000
    assert known["seconds_since_merchant_last_fraud"] == (delay + 6 * HOUR) / 1000
    assert f["card_again"]["user_fraud_count_30d"] == 1  # the card's own confirmed fraud
    assert known["user_fraud_count_30d"] == 0 and f["elsewhere"]["merchant_fraud_count_7d"] == 0
    later = f["a_day_later"]  # its 24h window [t - 8d, t - 7d) has moved past the fraud
    assert later["merchant_fraud_count_24h"] == 0 and later["merchant_fraud_risk_24h"] is None
    assert later["merchant_fraud_count_7d"] == 1  # recent_fraud is still within the delay


def test_the_label_delay_is_a_setting(spark):
    rows = [txn("fraud", "u1", "m", 100.0, T0), txn("probe", "u2", "m", 1.0, T0 + 3 * DAY)]
    labels = [("fraud", True, T0 + HOUR)]
    frame = spark.createDataFrame(rows, COLUMNS).selectExpr(
        "*", "timestamp_millis(ts_ms) AS `timestamp`"
    )
    label_frame = spark.createDataFrame(
        labels, "transaction_id string, is_fraud boolean, complete_ms bigint"
    )
    by_delay = {
        delay: {
            r["transaction_id"]: r
            for r in compute_features(spark, frame, label_frame, delay).collect()
        }
        for delay in (2, 7)
    }
    assert by_delay[2]["probe"]["merchant_fraud_count_7d"] == 1
    assert by_delay[7]["probe"]["merchant_fraud_count_7d"] == 0


def test_every_catalog_feature_is_computed_with_its_type(spark):
    f = features(spark, [txn("a", "u", "m", 1.0, T0)])
    assert set(BY_NAME) <= set(f["a"])
    assert len(CATALOG) == len(BY_NAME)  # names are unique
    assert "amount" in MODEL_FEATURES and "merchant_category" not in MODEL_FEATURES


def test_duckdb_runs_the_same_sql_to_the_same_values(spark):
    """The benchmark's DuckDB side, and any second engine, must compute what Spark does."""
    import random

    import duckdb
    import pandas as pd

    from fraud_platform.features.sql import ID_COLUMNS, feature_sql

    rng = random.Random(5)
    rows = [
        txn(
            f"t{i:04d}",
            f"u{rng.randrange(6)}",
            f"m{rng.randrange(4)}",
            round(rng.uniform(1, 500), 2),
            T0 + rng.randrange(0, 40 * DAY, 7 * MIN),
            device=rng.choice(["d1", "d2", None]),
            declined=rng.random() < 0.1,
            country=rng.choice(["FR", "DE", "ES"]),
        )
        for i in range(400)
    ]
    labels = [(r[0], rng.random() < 0.3, r[4] + rng.randrange(1, 20) * DAY) for r in rows[::3]]
    on_spark = features(spark, rows, labels)

    names = [c.split()[0] for c in COLUMNS.split(", ")]
    frame = pd.DataFrame(rows, columns=names)
    frame["timestamp"] = pd.to_datetime(frame["ts_ms"], unit="ms")
    label_frame = pd.DataFrame(labels, columns=["transaction_id", "is_fraud", "complete_ms"])
    db = duckdb.connect()
    db.register("feature_transactions", frame)
    db.register("feature_labels", label_frame)
    on_duckdb = db.execute(feature_sql("feature_transactions", "feature_labels", "duckdb")).df()
    assert len(on_duckdb) == len(on_spark)
    compared = [f.name for f in CATALOG if f.name not in ID_COLUMNS]
    for row in on_duckdb.to_dict("records"):
        expected = on_spark[row["transaction_id"]]
        for name in compared:
            got, want = row[name], expected[name]
            if want is None:
                assert pd.isna(got), (row["transaction_id"], name, got)
            elif isinstance(want, str):
                assert got == want, (row["transaction_id"], name)
            else:
                assert got == pytest.approx(want, rel=1e-9), (row["transaction_id"], name)
