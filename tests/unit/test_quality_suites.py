"""Quality layers 1 and 4: real GX suites on crafted batches; each bad batch fails the
expectation named for its defect, a good batch passes, thresholds come from configuration."""

import json

import numpy as np
import pandas as pd
import pytest

from fraud_platform.features.catalog import CATALOG
from fraud_platform.ingestion.rules import CURRENCIES
from fraud_platform.lake import RAW_TRANSACTIONS_SCHEMA
from fraud_platform.models.training import FEATURES
from fraud_platform.quality.runner import validate
from fraud_platform.quality.suites import SUITES_DIR, all_checks, checks_for

RAW = checks_for("raw/transactions")[0]
TRAINING = checks_for("training/training_set")[0]


def raw_batch(n: int = 200) -> pd.DataFrame:
    table = RAW_TRANSACTIONS_SCHEMA.empty_table().to_pandas()
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "user_id": [f"u{i % 20}" for i in range(n)],
            "merchant_id": [f"m{i % 7}" for i in range(n)],
            "amount": np.linspace(1, 900, n),
            "currency": ["EUR"] * n,
            "timestamp": pd.date_range("2025-03-03", periods=n, freq="min", unit="ms", tz="UTC"),
            "lat": [48.8] * n,
            "lon": [2.3] * n,
        }
    )
    return pd.concat([table, frame])[table.columns].reset_index(drop=True)


def training_batch(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({name: rng.uniform(0, 10, n) for name in FEATURES})
    for name in ("merchant_category", "merchant_risk_tier"):
        frame[name] = "grocery"
    frame["transaction_id"] = [f"t{i}" for i in range(n)]
    frame["label"] = (np.arange(n) % 50 == 0).astype(int)
    frame["split"] = np.where(np.arange(n) < n * 0.8, "train", "test")
    return frame


def check_raw(frame: pd.DataFrame):
    return validate(frame, RAW, currencies=sorted(CURRENCIES))


def check_training(frame: pd.DataFrame):
    return validate(frame, TRAINING, catalog_features=FEATURES)


def failed(outcome) -> set[tuple[str, str | None]]:
    return {(f.expectation, f.column) for f in outcome.failures}


def test_a_good_raw_batch_passes():
    outcome = check_raw(raw_batch())
    assert outcome.success, outcome.failures
    assert outcome.evaluated == len(RAW.definition()["expectations"])


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ("null burst", ("expect_column_values_to_not_be_null", "user_id")),
        ("duplicate ids", ("expect_column_values_to_be_unique", "transaction_id")),
        ("negative amount", ("expect_column_values_to_be_between", "amount")),
        ("unknown currency", ("expect_column_values_to_be_in_set", "currency")),
        ("amount as text", ("expect_column_values_to_be_of_type", "amount")),
        ("empty day", ("expect_table_row_count_to_be_between", None)),
    ],
)
def test_each_raw_defect_fails_its_expectation(defect, expected):
    frame = raw_batch()
    if defect == "null burst":
        frame.loc[10:60, "user_id"] = None
    elif defect == "duplicate ids":
        frame.loc[5, "transaction_id"] = frame.loc[6, "transaction_id"]
    elif defect == "negative amount":
        frame.loc[3, "amount"] = -4.0
    elif defect == "unknown currency":
        frame.loc[7, "currency"] = "XBT"
    elif defect == "amount as text":
        frame["amount"] = frame["amount"].astype(str)
    elif defect == "empty day":
        frame = frame.iloc[0:0]
    outcome = check_raw(frame)
    assert not outcome.success
    assert expected in failed(outcome)
    if defect == "null burst":
        failure = next(f for f in outcome.failures if f.column == "user_id")
        assert failure.unexpected_count == 51


def test_a_good_training_set_passes():
    outcome = check_training(training_batch())
    assert outcome.success, outcome.failures


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ("missing labels", ("expect_column_values_to_not_be_null", "label")),
        ("no fraud at all", ("expect_column_mean_to_be_between", "label")),
        ("a feature dropped", ("expect_table_columns_to_match_set", None)),
        (
            "null burst in a count",
            ("expect_column_values_to_not_be_null", "user_transaction_count_7d"),
        ),
        ("a third split", ("expect_column_values_to_be_in_set", "split")),
    ],
)
def test_each_training_set_defect_fails_its_expectation(defect, expected):
    frame = training_batch()
    if defect == "missing labels":
        frame["label"] = frame["label"].astype("float").where(frame.index % 9 != 0)
    elif defect == "no fraud at all":
        frame["label"] = 0
    elif defect == "a feature dropped":
        frame = frame.drop(columns=["merchant_unique_customers_30d"])
    elif defect == "null burst in a count":
        frame.loc[0:20, "user_transaction_count_7d"] = None
    elif defect == "a third split":
        frame.loc[0, "split"] = "validation"
    outcome = check_training(frame)
    assert not outcome.success
    assert expected in failed(outcome)


def test_thresholds_are_configuration(monkeypatch):
    frame = training_batch()  # fraud rate 2%
    assert check_training(frame).success
    monkeypatch.setenv("FRAUD_QUALITY_MAX_FRAUD_RATE", "0.01")
    assert ("expect_column_mean_to_be_between", "label") in failed(check_training(frame))


def test_suites_name_only_columns_that_exist():
    """A renamed feature or lake column must fail here, not silently in production."""
    known = {
        "ingestion/raw_transactions": set(RAW_TRANSACTIONS_SCHEMA.names),
        "pretraining/training_set": {f.name for f in CATALOG}
        | {"label", "split", "transaction_id"},
    }
    for check in all_checks():
        suite = json.loads((SUITES_DIR / f"{check.suite}.json").read_text())
        assert suite["name"] == check.suite
        for expectation in suite["expectations"]:
            column = expectation["kwargs"].get("column")
            assert column is None or column in known[check.suite], (check.suite, column)
