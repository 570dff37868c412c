"""The five quality layers: real GX suites on crafted batches; each bad batch fails the
expectation named for its defect, a good batch passes, thresholds come from configuration."""

import json

import numpy as np
import pandas as pd
import pytest

from fraud_platform.features.catalog import CATALOG
from fraud_platform.ingestion.rules import CURRENCIES
from fraud_platform.lake import RAW_TRANSACTIONS_SCHEMA
from fraud_platform.models.training import FEATURES, MODEL_FEATURES
from fraud_platform.quality.loaders import drift_parameters, training_parameters
from fraud_platform.quality.runner import validate
from fraud_platform.quality.suites import SUITES_DIR, all_checks, check_named, checks_for

RAW = checks_for("raw/transactions")[0]
TRAINING = checks_for("training/training_set")[0]
PROCESSED = check_named("batch/processed_transactions")
DRIFT = check_named("batch/feature_drift")
SCORES = check_named("posttraining/model_scores")
IMPORTANCE = check_named("posttraining/feature_importance")
VERSUS = check_named("posttraining/versus_production")


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


def training_batch(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.uniform(0, 10, n) for name in FEATURES})
    for name in ("merchant_category", "merchant_risk_tier"):
        frame[name] = "grocery"
    frame["transaction_id"] = [f"t{i}" for i in range(n)]
    frame["user_id"] = [f"u{i % 20}" for i in range(n)]
    frame["ts_ms"] = 1_740_000_000_000 + np.arange(n) * 60_000
    frame["label"] = (np.arange(n) % 50 == 0).astype(int)
    frame["split"] = np.where(np.arange(n) < n * 0.8, "train", "test")
    return frame


def check_raw(frame: pd.DataFrame):
    return validate(frame, RAW, currencies=sorted(CURRENCIES), dead_letters=0)


def check_training(frame: pd.DataFrame):
    return validate(frame, TRAINING, catalog_features=FEATURES, **training_parameters(frame))


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
        ("a test row before training rows", ("expect_splits_to_be_time_ordered", None)),
        ("a feature leaked from the future", ("expect_no_column_to_predict_label_alone", None)),
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
    elif defect == "a test row before training rows":
        frame.loc[0, "split"] = "test"
    elif defect == "a feature leaked from the future":
        # The 30-day merchant fraud rate computed with labels not yet known: it is the label.
        frame["merchant_fraud_risk_30d"] = frame["label"] * 0.9 + 0.05
    outcome = check_training(frame)
    assert not outcome.success
    assert expected in failed(outcome)


def test_thresholds_are_configuration(monkeypatch):
    frame = training_batch()  # fraud rate 2%
    assert check_training(frame).success
    monkeypatch.setenv("FRAUD_QUALITY_MAX_FRAUD_RATE", "0.01")
    assert ("expect_column_mean_to_be_between", "label") in failed(check_training(frame))


def test_train_and_test_must_look_alike():
    frame = training_batch(6000, seed=3)
    assert check_training(frame).success
    test = frame["split"] == "test"
    frame.loc[test, "user_total_spend_24h"] *= 4  # the test period spends four times as much
    outcome = check_training(frame)
    failure = next(f for f in outcome.failures if f.expectation.startswith("expect_columns_psi"))
    assert failure.sample == ["user_total_spend_24h"]


def test_the_test_period_is_compared_with_its_own_cards_before_it():
    """Its days leave out the cards known to be compromised: their bursts in the training
    period, and the known frauds the test period is selected on, are no drift."""
    frame = training_batch(6000, seed=3)
    rows = np.arange(len(frame))
    train = (frame["split"] == "train").to_numpy()
    compromised = train & (rows % 2 == 0)
    frame["user_id"] = np.where(compromised, "c", "u") + (rows % 10).astype(str)
    frame.loc[compromised, "user_total_spend_30d"] += 100  # the compromised cards' bursts
    frame["user_fraud_count_30d"] = np.where(compromised, 3, 0)
    frame.loc[~train, "user_fraud_count_30d"] = rows[~train] % 2  # frauds from before
    assert check_training(frame).success
    assert "user_fraud_count_30d" not in training_parameters(frame)["train_references"]
    frame.loc[~train, "user_total_spend_30d"] += 100  # the clean cards change their ways
    outcome = check_training(frame)
    failure = next(f for f in outcome.failures if f.expectation.startswith("expect_columns_psi"))
    assert failure.sample == ["user_total_spend_30d"]


def test_suites_name_only_columns_that_exist():
    """A renamed feature or lake column must fail here, not silently in production."""
    features = {f.name for f in CATALOG}
    transaction = {"transaction_id", "user_id", "merchant_id", "amount", "ts_ms"}
    known = {
        "ingestion/raw_transactions": set(RAW_TRANSACTIONS_SCHEMA.names),
        "pretraining/training_set": features | {"label", "split", "transaction_id"},
        "batch/processed_transactions": transaction | {"user_known", "merchant_known"},
        "batch/feature_drift": features,
        "streaming/window_metrics": {"metric", "value"},
        "posttraining/model_scores": {"label", "score", "production_score"},
        "posttraining/versus_production": {"label", "score", "production_score"},
        "posttraining/feature_importance": {"feature", "importance"},
    }
    for check in all_checks():
        suite = json.loads((SUITES_DIR / f"{check.suite}.json").read_text())
        assert suite["name"] == check.suite
        for expectation in suite["expectations"]:
            column = expectation["kwargs"].get("column")
            assert column is None or column in known[check.suite], (check.suite, column)


# -- layer 3 -------------------------------------------------------------------------------


def processed_batch(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "user_id": [f"u{i % 40}" for i in range(n)],
            "merchant_id": [f"m{i % 9}" for i in range(n)],
            "amount": rng.lognormal(3.5, 1, n),
            "ts_ms": 1_740_000_000_000 + np.arange(n) * 1000,
            "user_known": True,
            "merchant_known": True,
        }
    )


def test_processed_transactions_layer():
    assert validate(processed_batch(), PROCESSED).success
    orphans = processed_batch()
    orphans.loc[0:4, "merchant_known"] = False  # merchants missing from the reference table
    outcome = validate(orphans, PROCESSED)
    assert ("expect_column_values_to_be_in_set", "merchant_known") in failed(outcome)
    inflated = processed_batch()
    inflated["amount"] *= 200  # cents read as units: the mean leaves its range
    assert ("expect_column_mean_to_be_between", "amount") in failed(validate(inflated, PROCESSED))


def feature_days(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: rng.gamma(2.0, 10.0, n) for name in MODEL_FEATURES})


def test_feature_drift_layer():
    before = feature_days(14_000, seed=5)  # the previous 7 days
    parameters = drift_parameters(before, yesterday_rows=2000)
    today = feature_days(2000, seed=6)
    assert validate(today, DRIFT, **parameters).success
    shifted = today.copy()
    shifted["amount"] = shifted["amount"] * 3
    outcome = validate(shifted, DRIFT, **parameters)
    drifted = {f.expectation: f.sample for f in outcome.failures}
    assert drifted["expect_columns_psi_to_be_less_than"] == ["amount"]
    assert drifted["expect_columns_ks_statistic_to_be_less_than"] == ["amount"]
    halved = feature_days(900, seed=7)  # less than half of yesterday's volume
    outcome = validate(halved, DRIFT, **drift_parameters(before, yesterday_rows=2000))
    assert ("expect_table_row_count_to_be_between", None) in failed(outcome)


# -- layer 5 -------------------------------------------------------------------------------


def holdout(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    labels = (rng.random(n) < 0.05).astype(int)
    return pd.DataFrame(
        {
            "label": labels,
            "score": np.clip(0.7 * labels + 0.4 * rng.random(n), 0, 1),
            "production_score": np.clip(0.3 * labels + 0.6 * rng.random(n), 0, 1),
            "date": [f"2025-03-0{1 + i % 3}" for i in range(n)],
            "user_id": [f"u{i}" for i in range(n)],
        }
    )


def check_scores(frame: pd.DataFrame, **overrides):
    return validate(frame, SCORES, review_threshold=0.5, top_k=100, **overrides)


def test_model_scores_layer():
    assert check_scores(holdout()).success, check_scores(holdout()).failures
    single = holdout()
    single["score"] = 0.2  # never flags anything
    outcome = check_scores(single)
    bounds = [f.observed for f in outcome.failures if f.expectation.startswith("expect_model")]
    assert 0.0 in bounds  # the share flagged: one class
    # card precision@100: every compromised card (fewer than 100 a day) is ranked first
    scores = holdout()
    expected = scores.groupby("date")["label"].sum().mean() / 100
    outcome = check_scores(scores, min_card_precision=expected + 0.01)
    assert [f.observed for f in outcome.failures] == [pytest.approx(expected)]
    assert check_scores(scores, min_card_precision=expected - 1e-9).success
    worse = holdout()
    assert validate(worse, VERSUS, review_threshold=0.5).success
    worse["score"], worse["production_score"] = worse["production_score"], worse["score"]
    outcome = validate(worse, VERSUS, review_threshold=0.5)
    assert ("expect_score_to_beat_baseline", None) in failed(outcome)


def test_feature_importance_layer():
    shares = np.linspace(1, 0.1, len(FEATURES))  # FEATURES starts with amount
    frame = pd.DataFrame({"feature": FEATURES, "importance": shares / shares.sum()})
    assert validate(frame, IMPORTANCE).success
    leak = frame.copy()
    leak.loc[leak["feature"] == "merchant_fraud_risk_30d", "importance"] = 5.0
    leak["importance"] = leak["importance"] / leak["importance"].sum()  # one feature ~80%
    assert ("expect_column_max_to_be_between", "importance") in failed(validate(leak, IMPORTANCE))
    no_amount = frame[~frame["feature"].str.contains("amount|spend")]
    assert ("expect_top_ranked_values_to_match_regex", None) in failed(
        validate(no_amount, IMPORTANCE)
    )
