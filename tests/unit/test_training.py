"""Training on a source without categorical attributes, and the time split."""

import numpy as np
import pandas as pd
import pytest

from fraud_platform.models.training import FEATURES, TrainingWindow, evaluate, predict, train


def frame(n: int = 400, categories: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = {name: rng.normal(size=n) for name in FEATURES}
    data["amount"] = np.where(np.arange(n) % 20 == 0, 900.0, rng.uniform(5, 100, n))
    for name in ("merchant_category", "merchant_risk_tier"):
        data[name] = rng.choice(["a", "b"], n) if categories else [None] * n
    data["label"] = (np.arange(n) % 20 == 0).astype(int)
    data["split"] = np.where(np.arange(n) < 300, "train", "test")
    return pd.DataFrame(data)


@pytest.mark.parametrize("categories", [True, False])
def test_trains_with_or_without_categorical_attributes(categories):
    data = frame(categories=categories)
    booster, params = train(data, rounds=20)
    test = data[data["split"] == "test"]
    metrics = evaluate(test["label"].to_numpy(), predict(booster, test), 0.5)
    assert params["scale_pos_weight"] == pytest.approx(285 / 15)
    assert metrics.auc_roc > 0.95  # the amount separates the classes


def test_no_fraud_in_training_is_a_clear_error():
    data = frame()
    data["label"] = 0
    with pytest.raises(ValueError, match="no fraud label"):
        train(data)


def test_window_dates_put_the_test_days_last():
    train_dates, test_dates = TrainingWindow(10, 2, 3).dates("2025-03-12")
    assert train_dates[0] == "2025-03-03" and train_dates[-1] == "2025-03-07"
    assert test_dates == ["2025-03-08", "2025-03-09", "2025-03-10"]
    with pytest.raises(ValueError, match="not enough for 3 test days"):
        TrainingWindow(4, 2, 3).dates("2025-03-12")
