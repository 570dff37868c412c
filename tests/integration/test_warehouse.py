"""The star schema and its loads, the same tests on both backends: a DuckDB file, and
Snowflake through a fakesnow server reached by the real connector (dagster-snowflake)."""

from datetime import date, datetime

import pyarrow as pa
import pytest

from fraud_platform.warehouse.calendar import date_id, date_rows
from fraud_platform.warehouse.loading import LoadError, conform, upsert
from fraud_platform.warehouse.metrics import daily_metrics, refresh_daily_metrics
from fraud_platform.warehouse.schema import (
    DATE_DIMENSION,
    MODEL_PREDICTIONS_FACT,
    STAR_SCHEMA,
    TRANSACTIONS_FACT,
    USERS_DIMENSION,
    Table,
    create_tables,
)

T0 = datetime(2026, 11, 2, 9, 30)


def transactions(count: int, **overrides) -> pa.Table:
    rows = [
        {
            "transaction_id": f"t{i:04d}", "user_id": f"u{i % 7}", "merchant_id": f"m{i % 3}",
            "date_id": 20261102, "transaction_time": T0, "amount": 10.0 + i, "currency": "EUR",
            "country": "FR", "channel": "online", "card_last4": "4242",
            "card_token": "a" * 52, "declined": False,
            "is_fraud": None, "fraud_type": None, "labelled_at": None, **overrides,
        }
        for i in range(count)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows)


def fetch(connection, sql: str) -> list[tuple]:
    cursor = connection.cursor()
    cursor.execute(sql)
    return [tuple(row) for row in cursor.fetchall()]


def test_every_table_of_the_star_schema_exists(warehouse):
    connection, _ = warehouse
    for table in STAR_SCHEMA:
        assert fetch(connection, f"SELECT COUNT(*) FROM {table.name}") == [(0,)]


def test_loading_the_same_rows_twice_leaves_one_copy(warehouse):
    connection, backend = warehouse
    rows = transactions(2_500)  # more than one INSERT chunk on Snowflake
    assert upsert(connection, backend, TRANSACTIONS_FACT, rows) == 2_500
    assert upsert(connection, backend, TRANSACTIONS_FACT, rows) == 2_500
    count, total = fetch(connection, "SELECT COUNT(*), SUM(amount) FROM transactions_fact")[0]
    assert count == 2_500 and total == pytest.approx(sum(10.0 + i for i in range(2_500)))


def test_a_matured_label_updates_its_transaction(warehouse):
    connection, backend = warehouse
    upsert(connection, backend, TRANSACTIONS_FACT, transactions(10))
    labelled = transactions(3, is_fraud=True, fraud_type="card_testing", labelled_at=T0)
    upsert(connection, backend, TRANSACTIONS_FACT, labelled)
    got = fetch(
        connection,
        "SELECT transaction_id, is_fraud, fraud_type FROM transactions_fact "
        "WHERE is_fraud IS NOT NULL ORDER BY transaction_id",
    )
    assert got == [(f"t{i:04d}", True, "card_testing") for i in range(3)]
    assert fetch(connection, "SELECT COUNT(*) FROM transactions_fact") == [(10,)]


def test_dimension_rows_are_replaced_by_key(warehouse):
    connection, backend = warehouse
    user = {"user_id": "u1", "account_type": "personal", "kyc_status": "pending",
            "registration_date": date(2024, 5, 1), "home_country": "FR",
            "home_lat": 48.85, "home_lon": 2.35}  # fmt: skip
    upsert(connection, backend, USERS_DIMENSION, pa.Table.from_pylist([user]))
    verified = {**user, "kyc_status": "verified"}
    upsert(connection, backend, USERS_DIMENSION, pa.Table.from_pylist([verified]))
    assert fetch(
        connection, "SELECT user_id, kyc_status, registration_date FROM users_dimension"
    ) == [("u1", "verified", date(2024, 5, 1))]


def test_within_one_load_the_last_row_of_a_key_wins():
    rows = pa.Table.from_pylist([
        {"transaction_id": "t1", "amount": 1.0}, {"transaction_id": "t2", "amount": 2.0},
        {"transaction_id": "t1", "amount": 3.0},
    ])  # fmt: skip
    columns = (("transaction_id", "VARCHAR"), ("amount", "DOUBLE"))
    table = Table("probe", columns, ("transaction_id",), "")
    assert sorted(conform(table, rows).to_pylist(), key=lambda r: r["transaction_id"]) == [
        {"transaction_id": "t1", "amount": 3.0}, {"transaction_id": "t2", "amount": 2.0}
    ]  # fmt: skip


def test_rows_missing_a_column_or_a_key_are_refused_with_the_reason():
    with pytest.raises(LoadError, match=r"transactions_fact: the rows lack column.*is_fraud"):
        conform(TRANSACTIONS_FACT, transactions(2).drop_columns(["is_fraud"]))
    keyless = transactions(2).set_column(0, "transaction_id", pa.array([None, "t1"], pa.string()))
    with pytest.raises(LoadError, match=r"1 row.* without transaction_id"):
        conform(TRANSACTIONS_FACT, keyless)


def test_an_existing_warehouse_gains_the_columns_a_later_schema_adds(warehouse):
    """A warehouse made before `card_token` (transaction v2) is upgraded in place: its rows
    stay, the new column reads null for them and takes values from then on."""
    connection, backend = warehouse
    before = Table(TRANSACTIONS_FACT.name,
                   tuple(c for c in TRANSACTIONS_FACT.columns if c[0] != "card_token"),
                   TRANSACTIONS_FACT.key, "")  # fmt: skip
    cursor = connection.cursor()
    cursor.execute(f"DROP TABLE {TRANSACTIONS_FACT.name}")
    cursor.execute(before.ddl())
    upsert(connection, backend, before, transactions(2).drop_columns(["card_token"]))
    create_tables(connection)
    upsert(connection, backend, TRANSACTIONS_FACT, transactions(3).slice(2))
    assert fetch(connection, "SELECT transaction_id, card_token FROM transactions_fact "
                             "ORDER BY transaction_id") == [
        ("t0000", None), ("t0001", None), ("t0002", "a" * 52)]  # fmt: skip


def test_the_date_dimension_knows_weekends_and_the_country_s_holidays(warehouse):
    connection, backend = warehouse
    rows = date_rows(date(2026, 12, 24), date(2026, 12, 27), "US")
    upsert(connection, backend, DATE_DIMENSION, rows)
    upsert(connection, backend, DATE_DIMENSION, rows)
    got = fetch(
        connection,
        "SELECT date_id, day_of_week, is_weekend, is_holiday FROM date_dimension ORDER BY date_id",
    )
    assert got == [
        (20261224, 4, False, False),
        (20261225, 5, False, True),  # Christmas Day
        (20261226, 6, True, False),
        (20261227, 7, True, False),
    ]
    with pytest.raises(ValueError, match="no holiday calendar for country 'XX'"):
        date_rows(date(2026, 1, 1), date(2026, 1, 2), "XX")


def predictions(decisions: dict[str, str], at: datetime = T0, version: str = "v1") -> pa.Table:
    return pa.Table.from_pylist([
        {"prediction_id": f"p-{tx}-{version}", "transaction_id": tx, "date_id": date_id(at.date()),
         "predicted_at": at, "fraud_probability": 0.5, "decision": decision,
         "model_version": version, "prediction_latency_ms": 3.0}
        for tx, decision in decisions.items()
    ])  # fmt: skip


def test_daily_metrics_count_what_the_model_caught_and_follow_late_labels(warehouse):
    connection, backend = warehouse
    day = date_id(T0.date())
    upsert(connection, backend, TRANSACTIONS_FACT, transactions(10))  # t0000..t0009, 10+i
    # Labels: t0000-t0002 fraud, t0003-t0004 legitimate, the rest not matured.
    upsert(connection, backend, TRANSACTIONS_FACT, transactions(5, is_fraud=False))
    upsert(connection, backend, TRANSACTIONS_FACT,
           transactions(3, is_fraud=True, labelled_at=T0))  # fmt: skip
    decisions = {"t0000": "decline", "t0001": "review", "t0002": "approve",
                 "t0003": "review", "t0005": "approve", "t0006": "decline"}  # fmt: skip
    upsert(connection, backend, MODEL_PREDICTIONS_FACT, predictions(decisions))
    # t0002 re-scored by a later model: its latest decision counts.
    later = datetime(2026, 11, 2, 10, 0)
    upsert(connection, backend, MODEL_PREDICTIONS_FACT,
           predictions({"t0002": "review"}, at=later, version="v2"))  # fmt: skip
    refresh_daily_metrics(connection, day, day)
    [metrics] = daily_metrics(connection, day, day)
    assert metrics["transactions"] == 10 and metrics["predictions"] == 6
    assert metrics["amount_total"] == pytest.approx(sum(10.0 + i for i in range(10)))
    assert (metrics["reviewed"], metrics["declined_by_model"]) == (3, 2)
    assert metrics["review_rate"] == pytest.approx(3 / 6)
    assert (metrics["labelled_fraud"], metrics["fraud_caught"]) == (3, 3)
    assert metrics["fraud_caught_rate"] == pytest.approx(1.0)
    # flagged with a label: t0..t3 (t0003 labelled legitimate), t0006 unlabelled
    assert metrics["flagged_precision"] == pytest.approx(3 / 4)

    matured = transactions(6, is_fraud=True, labelled_at=later).slice(5)  # t0005
    upsert(connection, backend, TRANSACTIONS_FACT, matured)
    refresh_daily_metrics(connection, day, day)
    [metrics] = daily_metrics(connection, day, day)
    assert (metrics["labelled_fraud"], metrics["fraud_caught"]) == (4, 3)
    assert metrics["fraud_caught_rate"] == pytest.approx(3 / 4)
    assert fetch(connection, "SELECT COUNT(*) FROM daily_business_metrics") == [(1,)]
