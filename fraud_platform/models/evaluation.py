"""How a model is judged: AUC-ROC, average precision and card precision@k (the Fraud
Detection Handbook's daily measure of what investigators get), plus the figures at the review
threshold, and the curves.

Card precision@k: each day, the k cards with the highest score (a card's score is its highest
transaction score that day, its label whether any of its transactions that day was a fraud)
are what investigators check; the share of compromised cards among them is that day's
precision. A card caught on an earlier day is blocked, so it leaves the later days. The
measure is the mean over the days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_TOP_K = 100


@dataclass(frozen=True)
class CardPrecision:
    mean: float
    per_day: dict[str, float]
    compromised_cards: dict[str, int]  # per day, after the removal of earlier days' catches


def card_precision_at_k(
    days: np.ndarray, cards: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int
) -> CardPrecision:
    """Card precision@k per day and its mean (see the module's docstring). Ties between cards
    are broken by the card id, so the figure does not depend on row order."""
    frame = pd.DataFrame({"day": days, "card": cards, "label": labels, "score": scores})
    caught: set = set()
    per_day, compromised = {}, {}
    for day, rows in sorted(frame.groupby("day"), key=lambda item: str(item[0])):
        rows = rows[~rows["card"].isin(caught)]
        by_card = rows.groupby("card").agg(score=("score", "max"), label=("label", "max"))
        by_card = by_card.reset_index().sort_values(
            ["score", "card"], ascending=[False, True], kind="stable"
        )
        top = by_card.head(k)
        found = top.loc[top["label"] > 0, "card"]
        per_day[str(day)] = len(found) / k
        compromised[str(day)] = int((by_card["label"] > 0).sum())
        caught.update(found)
    mean = float(np.mean(list(per_day.values()))) if per_day else float("nan")
    return CardPrecision(mean, per_day, compromised)


@dataclass(frozen=True)
class Metrics:
    auc_roc: float
    average_precision: float
    card_precision_at_k: float
    top_k: int
    precision_at_threshold: float
    recall_at_threshold: float
    threshold: float
    positives: int
    rows: int
    predicted_positive_share: float
    card_precision_per_day: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    days: np.ndarray | None = None,
    cards: np.ndarray | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> Metrics:
    """Every figure of one score column; card precision needs each row's day and card (NaN
    without them)."""
    from sklearn.metrics import (
        average_precision_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    decided = scores >= threshold
    both_classes = 0 < labels.sum() < len(labels)
    cp = None
    if days is not None and cards is not None and len(labels):
        cp = card_precision_at_k(days, cards, labels, scores, top_k)
    return Metrics(
        auc_roc=float(roc_auc_score(labels, scores)) if both_classes else float("nan"),
        average_precision=float(average_precision_score(labels, scores)) if both_classes else 0.0,
        card_precision_at_k=cp.mean if cp else float("nan"),
        top_k=top_k,
        precision_at_threshold=float(precision_score(labels, decided, zero_division=0)),
        recall_at_threshold=float(recall_score(labels, decided, zero_division=0)),
        threshold=threshold,
        positives=int(labels.sum()),
        rows=len(labels),
        predicted_positive_share=float(decided.mean()) if len(labels) else 0.0,
        card_precision_per_day=cp.per_day if cp else {},
    )


def evaluate_frame(
    frame: pd.DataFrame, score_column: str, threshold: float, top_k: int = DEFAULT_TOP_K
) -> Metrics:
    """`evaluate` on a frame of label, score, and (for card precision) date and user_id."""
    has_cards = {"date", "user_id"} <= set(frame.columns)
    return evaluate(
        frame["label"].to_numpy(),
        frame[score_column].to_numpy(),
        threshold,
        frame["date"].astype(str).to_numpy() if has_cards else None,
        frame["user_id"].to_numpy() if has_cards else None,
        top_k,
    )


def curves_png(
    labels: np.ndarray, curves: dict[str, np.ndarray], card_precision: dict[str, dict] | None = None
) -> dict[str, bytes]:
    """ROC and precision-recall curves of each named score, and each one's card precision per
    day when given, as PNG images."""
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
    if card_precision:
        with figure(5, 4) as (axis, out):
            for name, per_day in card_precision.items():
                axis.plot(list(per_day), list(per_day.values()), marker="o", label=name)
            axis.set(xlabel="test day", ylabel="card precision@k", title="Card precision per day")
            axis.tick_params(axis="x", labelrotation=45)
            axis.legend(loc="best")
        images["card_precision"] = out["png"]
    return images
