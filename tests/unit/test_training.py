"""Training on a source without categorical attributes, the class weight, and scoring with a
model of another feature list."""

import numpy as np
import pandas as pd
import pytest

from fraud_platform.models.evaluation import evaluate
from fraud_platform.models.training import FEATURES, Hyperparameters, predict, train


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
    booster, params = train(data, Hyperparameters(rounds=20, class_weight="balanced"))
    test = data[data["split"] == "test"]
    metrics = evaluate(test["label"].to_numpy(), predict(booster, test), 0.5)
    assert params["scale_pos_weight"] == pytest.approx(285 / 15)
    assert metrics.auc_roc > 0.95  # the amount separates the classes
    _, unweighted = train(data, Hyperparameters(rounds=5))
    assert "scale_pos_weight" not in unweighted


def test_no_fraud_in_training_is_a_clear_error():
    data = frame()
    data["label"] = 0
    with pytest.raises(ValueError, match="no fraud label"):
        train(data)


def test_a_model_scores_on_its_own_features_whatever_the_catalog_holds_now():
    """A production model trained before a catalog change (rollbacks included) still scores:
    its feature list is its own, and a feature the frame lacks is missing."""
    import xgboost as xgb

    data = frame()
    older = pd.DataFrame({"amount": data["amount"], "retired_feature": data["amount"] * 2})
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(older, label=data["label"]), 5)
    scores = predict(booster, data)  # the catalog's columns, without retired_feature
    assert len(scores) == len(data) and np.isfinite(scores).all()
    assert np.allclose(scores, booster.predict(xgb.DMatrix(older.assign(retired_feature=np.nan))))


def test_a_category_unseen_in_training_scores_as_missing_instead_of_failing():
    import xgboost as xgb

    from fraud_platform.features.catalog import CATEGORICAL_FEATURES, MODEL_FEATURES
    from fraud_platform.models.training import known_categories, predict, to_matrix, train

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({name: rng.random(300) for name in MODEL_FEATURES})
    for name in CATEGORICAL_FEATURES:
        frame[name] = rng.choice(["a", "b"], 300)
    frame["label"], frame["split"] = (frame["amount"] > 0.5).astype(int), "train"
    booster, _ = train(frame, Hyperparameters(rounds=5))
    assert known_categories(booster)["merchant_category"] == {"a", "b"}
    new = frame.head(3).copy()
    new["merchant_category"] = ["a", "never-seen", None]
    scores = predict(booster, new)
    as_missing = new.copy()
    as_missing.loc[1, "merchant_category"] = None
    assert np.allclose(scores, predict(booster, as_missing))
    with pytest.raises(xgb.core.XGBoostError, match="not in the training set"):
        booster.predict(xgb.DMatrix(to_matrix(new), enable_categorical=True))
