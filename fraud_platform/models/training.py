"""Training sets, XGBoost training and scoring.

A training set follows the evaluation protocol (fraud_platform.models.protocol): training
rows labelled with the frauds known when the test period starts, test rows with the frauds
known by the as-of day, the delay period between them left out, and the cards already known
to be compromised on a test day removed from it. Fraud is not resampled, so the test set keeps
the real rate; whether the training weights the fraud class is a hyperparameter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraud_platform.batch.processing import date_range, read_dates
from fraud_platform.features.catalog import CATEGORICAL_FEATURES, MODEL_FEATURES
from fraud_platform.lake import LABELS, TRAINING_SETS_PATH, TRANSACTION_FEATURES_PATH
from fraud_platform.models.protocol import Periods, TrainingWindow

FEATURES = [*MODEL_FEATURES, *CATEGORICAL_FEATURES]


def build_training_set(
    spark, lake, as_of: str, window: TrainingWindow, remove_known_compromised: bool = True
):
    """The labelled, split rows as a Spark DataFrame (None when no features exist), and how
    many test rows of known-compromised cards were removed."""
    periods = window.periods(as_of)
    features = read_dates(spark, lake, TRANSACTION_FEATURES_PATH, periods.all_dates)
    if features is None:
        return None, 0
    labels = read_dates(spark, lake, LABELS.path, date_range(periods.train[0], as_of))
    if labels is None:
        frauds = spark.createDataFrame([], "transaction_id string, fraud_known_ms bigint")
    else:
        frauds = (
            labels.where("is_fraud")
            .groupBy("transaction_id")
            .agg({"investigation_complete_time": "min"})
            .selectExpr(
                "transaction_id",
                "unix_millis(`min(investigation_complete_time)`) AS fraud_known_ms",
            )
        )
    rows = features.withColumn("date", features["date"].cast("string")).join(
        frauds, "transaction_id", "left"
    )
    rows.createOrReplaceTempView("training_rows")
    columns = [c for c in rows.columns if c != "fraud_known_ms"]
    frame = spark.sql(_labelled_sql(periods, columns))
    if not remove_known_compromised:
        return frame.drop("card_known_ms"), 0
    removed = frame.where("split = 'test' AND card_known_ms < day_ms").count()
    kept = frame.where("NOT (split = 'test' AND card_known_ms < day_ms) OR card_known_ms IS NULL")
    return kept.drop("card_known_ms", "day_ms"), removed


def _labelled_sql(periods: Periods, columns: list[str]) -> str:
    """Each training and test row with its label, split, the start of its day and the instant
    its card was first known to be compromised (a fraud since the training start)."""
    train = ", ".join(f"'{d}'" for d in periods.train)
    test = ", ".join(f"'{d}'" for d in periods.test)
    return f"""
WITH cards AS (
  SELECT user_id, MIN(fraud_known_ms) AS card_known_ms
  FROM training_rows WHERE fraud_known_ms IS NOT NULL GROUP BY user_id
)
SELECT {", ".join(f"r.`{c}`" for c in columns)},
  CASE WHEN r.date IN ({train}) THEN 'train' ELSE 'test' END AS split,
  CASE WHEN r.fraud_known_ms < (CASE WHEN r.date IN ({train})
                                     THEN {periods.train_labels_before_ms}
                                     ELSE {periods.test_labels_before_ms} END)
       THEN 1 ELSE 0 END AS label,
  unix_millis(to_timestamp(r.date)) AS day_ms,
  c.card_known_ms
FROM training_rows r LEFT JOIN cards c ON c.user_id = r.user_id
WHERE r.date IN ({train}, {test})
"""


def to_matrix(frame: pd.DataFrame, features: list[str] | None = None) -> pd.DataFrame:
    """The model's input: numeric features as float32 (XGBoost's own precision: half the
    memory of float64, same model), categorical ones as pandas categories. `features`: the
    columns a model was trained on (the catalog's by default); one the frame lacks is missing
    on every row."""
    features = features or FEATURES
    matrix = frame.reindex(columns=features).copy()
    for name in features:
        if name in CATEGORICAL_FEATURES:
            continue
        matrix[name] = pd.to_numeric(matrix[name], errors="coerce").astype("float32")
    for name in [f for f in features if f in CATEGORICAL_FEATURES]:
        # Sources without the attribute (the handbook has no merchant category) still train:
        # a missing value is its own level. XGBoost keeps the levels and re-codes at scoring.
        matrix[name] = matrix[name].astype("object").fillna("unknown").astype("category")
    return matrix


@dataclass(frozen=True)
class Hyperparameters:
    """What model selection chooses among. The defaults are the best of the Fraud Detection
    Handbook's single split found with the platform's features (benchmarks/model): shallow
    trees, a slow rate, no class weight, and fine histogram bins (amounts have thresholds,
    e.g. the Handbook's 220, that 256 quantile bins blur)."""

    max_depth: int = 3
    learning_rate: float = 0.05
    rounds: int = 300
    class_weight: str = "none"  # "none", or "balanced": fraud weighted by genuine / fraud
    max_bin: int = 1024

    def xgboost(self, labels: pd.Series) -> dict[str, Any]:
        """XGBoost's parameters for training on `labels`."""
        params = {
            "objective": "binary:logistic",
            "eval_metric": "aucpr",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "max_bin": self.max_bin,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "seed": 7,
            "nthread": 2,
        }
        if self.class_weight == "balanced":
            positives = int(labels.sum())
            params["scale_pos_weight"] = (len(labels) - positives) / positives
        elif self.class_weight != "none":
            raise ValueError(f"class_weight {self.class_weight!r}: use 'none' or 'balanced'")
        return params

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(
    frame: pd.DataFrame, hyperparameters: Hyperparameters | None = None
) -> tuple[Any, dict[str, Any]]:
    """Train on the 'train' split; returns (booster, XGBoost parameters used)."""
    import xgboost as xgb

    hyperparameters = hyperparameters or Hyperparameters()
    training = frame[frame["split"] == "train"]
    if int(training["label"].sum()) == 0:
        raise ValueError("the training split holds no fraud label: nothing to learn from")
    params = hyperparameters.xgboost(training["label"])
    matrix = xgb.DMatrix(to_matrix(training), label=training["label"], enable_categorical=True)
    booster = xgb.train(params, matrix, num_boost_round=hyperparameters.rounds)
    return booster, {**params, "num_boost_round": hyperparameters.rounds}


def known_categories(booster) -> dict[str, set]:
    """The levels each categorical feature had in training."""
    exported = booster.get_categories(export_to_arrow=True).to_arrow()
    return {name: set(levels.to_pylist()) for name, levels in exported if levels is not None}


def predict(
    booster, frame: pd.DataFrame, known: dict[str, set] | None = None, rounds: int = 0
) -> np.ndarray:
    """Scores, on the features the model was trained on (a model from an older catalog still
    scores). A category the model never saw (a new merchant category, a source without the
    attribute) is scored as missing, which XGBoost routes like any missing value, rather
    than failing the whole batch. `known`: the booster's known_categories, when cached;
    `rounds`: score with the first rounds only (0: all)."""
    import xgboost as xgb

    matrix = to_matrix(frame, booster.feature_names)
    for name, levels in (known if known is not None else known_categories(booster)).items():
        # Exactly the training levels: anything else becomes missing.
        matrix[name] = matrix[name].astype("object").astype(pd.CategoricalDtype(sorted(levels)))
    matrix = xgb.DMatrix(matrix, enable_categorical=True)
    return booster.predict(matrix, iteration_range=(0, rounds))


def importance(booster) -> pd.DataFrame:
    """Each feature's share of the model's total gain (0 for features never split on)."""
    gains = booster.get_score(importance_type="total_gain")
    total = sum(gains.values()) or 1.0
    names = booster.feature_names or FEATURES
    shares = [gains.get(name, 0.0) / total for name in names]
    frame = pd.DataFrame({"feature": names, "importance": shares})
    return frame.sort_values("importance", ascending=False, kind="stable", ignore_index=True)


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
