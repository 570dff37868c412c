"""Model selection by prequential validation (the Fraud Detection Handbook, chapter 5).

Each grid point is trained and judged on several folds that slide back in time, one test
period apart (protocol.TrainingWindow.fold_as_of), each laid out as the real split is
(training, delay, validation); the point with the best mean of the chosen metric wins. Only
labels known before the real test period are read, so the choice does not peek at it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from fraud_platform.models import registry
from fraud_platform.models.evaluation import DEFAULT_TOP_K, evaluate_frame
from fraud_platform.models.protocol import METRICS
from fraud_platform.models.training import Hyperparameters, predict, train


def grid() -> list[Hyperparameters]:
    """The small grid: depth, rate, rounds and the class-imbalance handling."""
    return [
        Hyperparameters(max_depth=depth, learning_rate=rate, rounds=rounds, class_weight=weight)
        for depth, rate, rounds, weight in itertools.product(
            (3, 6), (0.05, 0.1), (100, 300), ("none", "balanced")
        )
    ]


@dataclass(frozen=True)
class Selection:
    metric: str
    chosen: Hyperparameters
    score: float  # the chosen point's mean over the folds
    folds: list[str]  # each fold's as-of day
    results: list[dict[str, Any]] = field(default_factory=list)  # every point, every metric

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "chosen": self.chosen.as_dict(),
            "score": self.score,
            "folds": self.folds,
            "results": self.results,
        }


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def select(
    folds: dict[str, pd.DataFrame],
    metric: str = "average_precision",
    candidates: list[Hyperparameters] | None = None,
    top_k: int = DEFAULT_TOP_K,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Selection:
    """The grid point with the best mean `metric` over the folds (as-of day -> its training
    set frame, with the train and test splits)."""
    if metric not in METRICS:
        raise ValueError(f"selection metric {metric!r}: use one of {', '.join(METRICS)}")
    usable = {day: f for day, f in folds.items() if f[f["split"] == "train"]["label"].sum() > 0}
    if not usable:
        raise ValueError("no validation fold has a fraud label in its training period")
    candidates = candidates or grid()
    per_point: dict[Hyperparameters, list[dict]] = {point: [] for point in candidates}
    # Points that differ only in their rounds share one booster: its first rounds are the
    # smaller point's model (boosting adds trees, and the seeded sampling draws the same).
    families: dict[Hyperparameters, list[Hyperparameters]] = {}
    for point in candidates:
        families.setdefault(replace(point, rounds=0), []).append(point)
    done, total = 0, len(families) * len(usable)
    for members in families.values():
        longest = max(members, key=lambda point: point.rounds)
        for frame in usable.values():
            booster, _ = train(frame, longest)
            test = frame[frame["split"] == "test"]
            for point in members:
                scored = test.assign(score=predict(booster, test, rounds=point.rounds))
                per_point[point].append(evaluate_frame(scored, "score", 0.5, top_k).as_dict())
            done += 1
            progress(done, total)
    results = [
        {**point.as_dict(), **{name: _mean(m[name] for m in per_point[point]) for name in METRICS}}
        for point in candidates
    ]
    best = max(range(len(results)), key=lambda i: _ranked(results[i][metric]))
    return Selection(metric, candidates[best], results[best][metric], list(usable), results)


def _ranked(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def chosen_hyperparameters(lake) -> tuple[Hyperparameters, dict[str, Any]]:
    """The latest search's choice (the defaults before any search), and where it came from."""
    selection = registry.latest_selection(lake)
    if selection is None:
        return Hyperparameters(), {"source": "defaults"}
    origin = {"source": "selection", "as_of": selection["as_of"], "metric": selection["metric"]}
    return Hyperparameters(**selection["chosen"]), {**origin, "score": selection["score"]}
