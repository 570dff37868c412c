"""Training sets, XGBoost training and evaluation.

Training set as of day D: the features of transactions from D - window + 1 to D - delay
(labels need `delay` days to mature), labelled fraud when a fraud label's investigation had
completed by the end of D, genuine otherwise. The split is by time: the last `test_days` days
are the holdout, every training row is older than every test row. The imbalance is handled
by weighting the fraud class (XGBoost's scale_pos_weight = genuine / fraud in training).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraud_platform.batch.processing import date_range, read_dates
from fraud_platform.features.catalog import CATEGORICAL_FEATURES, DAY_MS, MODEL_FEATURES
from fraud_platform.lake import LABELS, TRAINING_SETS_PATH, TRANSACTION_FEATURES_PATH

FEATURES = [*MODEL_FEATURES, *CATEGORICAL_FEATURES]


@dataclass(frozen=True)
class TrainingWindow:
    window_days: int = 90
    delay_days: int = 7
    test_days: int = 7

    def dates(self, as_of: str) -> tuple[list[str], list[str]]:
        """(train dates, test dates) for a training set as of `as_of`."""
        end = date.fromisoformat(as_of) - timedelta(days=self.delay_days)
        start = date.fromisoformat(as_of) - timedelta(days=self.window_days - 1)
        all_dates = date_range(start.isoformat(), end.isoformat())
        if len(all_dates) <= self.test_days:
            raise ValueError(
                f"a {self.window_days}-day window with a {self.delay_days}-day delay leaves "
                f"{len(all_dates)} days: not enough for {self.test_days} test days"
            )
        return all_dates[: -self.test_days], all_dates[-self.test_days :]


def build_training_set(spark, lake, as_of: str, window: TrainingWindow):
    """The labelled, split rows as a Spark DataFrame (None when no features exist)."""
    train_dates, test_dates = window.dates(as_of)
    dates = train_dates + test_dates
    features = read_dates(spark, lake, TRANSACTION_FEATURES_PATH, dates)
    if features is None:
        return None
    end_ms = (date.fromisoformat(as_of) + timedelta(days=1) - date(1970, 1, 1)).days * DAY_MS
    labels = read_dates(spark, lake, LABELS.path, date_range(dates[0], as_of))
    if labels is None:
        known = spark.createDataFrame([], "transaction_id string, label int")
    else:
        known = (
            labels.where(f"is_fraud AND unix_millis(investigation_complete_time) < {end_ms}")
            .selectExpr("transaction_id", "1 AS label")
            .distinct()
        )
    test = ", ".join(f"'{d}'" for d in test_dates)
    return (
        features.withColumn("date", features["date"].cast("string"))
        .join(known, "transaction_id", "left")
        .fillna({"label": 0})
        .selectExpr("*", f"CASE WHEN date IN ({test}) THEN 'test' ELSE 'train' END AS split")
    )


def to_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input: numeric features as float32 (XGBoost's own precision: half the
    memory of float64, same model), categorical ones as pandas categories."""
    matrix = frame[FEATURES].copy()
    for name in MODEL_FEATURES:
        matrix[name] = pd.to_numeric(matrix[name], errors="coerce").astype("float32")
    for name in CATEGORICAL_FEATURES:
        # Sources without the attribute (the handbook has no merchant category) still train:
        # a missing value is its own level. XGBoost keeps the levels and re-codes at scoring.
        matrix[name] = matrix[name].astype("object").fillna("unknown").astype("category")
    return matrix


DEFAULT_PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "aucpr",
    "tree_method": "hist",
    "max_depth": 6,
    "learning_rate": 0.1,
    "min_child_weight": 1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "seed": 7,
    "nthread": 2,
}


def train(frame: pd.DataFrame, rounds: int = 200) -> tuple[Any, dict[str, Any]]:
    """Train on the 'train' split; returns (booster, parameters used)."""
    import xgboost as xgb

    training = frame[frame["split"] == "train"]
    positives = int(training["label"].sum())
    if positives == 0:
        raise ValueError("the training split holds no fraud label: nothing to learn from")
    params = {**DEFAULT_PARAMS, "scale_pos_weight": (len(training) - positives) / positives}
    matrix = xgb.DMatrix(to_matrix(training), label=training["label"], enable_categorical=True)
    booster = xgb.train(params, matrix, num_boost_round=rounds)
    return booster, {**params, "num_boost_round": rounds}


def known_categories(booster) -> dict[str, set]:
    """The levels each categorical feature had in training."""
    exported = booster.get_categories(export_to_arrow=True).to_arrow()
    return {name: set(levels.to_pylist()) for name, levels in exported if levels is not None}


def predict(booster, frame: pd.DataFrame, known: dict[str, set] | None = None) -> np.ndarray:
    """Scores. A category the model never saw (a new merchant category, a source without the
    attribute) is scored as missing, which XGBoost routes like any missing value, rather
    than failing the whole batch. `known`: the booster's known_categories, when cached."""
    import xgboost as xgb

    matrix = to_matrix(frame)
    for name, levels in (known if known is not None else known_categories(booster)).items():
        # Exactly the training levels: anything else becomes missing.
        matrix[name] = matrix[name].astype("object").astype(pd.CategoricalDtype(sorted(levels)))
    return booster.predict(xgb.DMatrix(matrix, enable_categorical=True))


def importance(booster) -> pd.DataFrame:
    """Each feature's share of the model's total gain (0 for features never split on)."""
    gains = booster.get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    shares = [gains.get(name, 0.0) / total for name in FEATURES]
    frame = pd.DataFrame({"feature": FEATURES, "importance": shares})
    return frame.sort_values("importance", ascending=False, kind="stable", ignore_index=True)


@dataclass(frozen=True)
class Metrics:
    auc_roc: float
    average_precision: float
    precision_at_threshold: float
    recall_at_threshold: float
    threshold: float
    positives: int
    rows: int
    predicted_positive_share: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Metrics:
    from sklearn.metrics import (
        average_precision_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    decided = scores >= threshold
    both_classes = 0 < labels.sum() < len(labels)
    return Metrics(
        auc_roc=float(roc_auc_score(labels, scores)) if both_classes else float("nan"),
        average_precision=float(average_precision_score(labels, scores)) if both_classes else 0.0,
        precision_at_threshold=float(precision_score(labels, decided, zero_division=0)),
        recall_at_threshold=float(recall_score(labels, decided, zero_division=0)),
        threshold=threshold,
        positives=int(labels.sum()),
        rows=len(labels),
        predicted_positive_share=float(decided.mean()),
    )


def curves_png(labels: np.ndarray, curves: dict[str, np.ndarray]) -> dict[str, bytes]:
    """ROC and precision-recall curves of each named score, as PNG images."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    from fraud_platform.plots import figure

    images = {}
    for kind in ("roc", "pr"):
        with figure(5, 4) as (axis, out):
            for name, scores in curves.items():
                if kind == "roc":
                    x, y, _ = roc_curve(labels, scores)
                    axis.plot(x, y, label=name)
                    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
                else:
                    precision, recall, _ = precision_recall_curve(labels, scores)
                    axis.plot(recall, precision, label=name)
                    axis.set(xlabel="recall", ylabel="precision", title="Precision-recall")
            axis.legend(loc="best")
        images[kind] = out["png"]
    return images


def load_training_set(lake, as_of: str) -> pd.DataFrame:
    """The training set written for `as_of`, with its split column."""
    import pyarrow.dataset as ds

    filesystem, base = lake.filesystem()
    table = ds.dataset(
        f"{base}/{TRAINING_SETS_PATH}/date={as_of}",
        filesystem=filesystem,
        format="parquet",
        partitioning="hive",
    ).to_table()
    frame = table.to_pandas()
    frame["split"] = frame["split"].astype(str)
    return frame.sort_values(["ts_ms", "transaction_id"], kind="stable").reset_index(drop=True)
