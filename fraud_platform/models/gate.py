"""The post-training gate and the promotion rule, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    review: float = 0.5  # the score from which a transaction goes to review
    min_average_precision: float = 0.05

    @classmethod
    def from_env(cls) -> Thresholds:
        return cls(
            review=float(os.environ.get("FRAUD_REVIEW_THRESHOLD", cls.review)),
            min_average_precision=float(
                os.environ.get("FRAUD_MIN_AVERAGE_PRECISION", cls.min_average_precision)
            ),
        )


def gate_failures(metrics: dict, thresholds: Thresholds) -> list[str]:
    """Why a candidate may not serve (empty when it may)."""
    found = []
    share = metrics["predicted_positive_share"]
    if share in (0.0, 1.0):
        found.append(f"predicts one class only (share flagged: {share:.0%})")
    if metrics["average_precision"] < thresholds.min_average_precision:
        found.append(
            f"average precision {metrics['average_precision']:.3f} is below the floor "
            f"{thresholds.min_average_precision}"
        )
    return found


def promotion_decision(candidate: dict, production: dict | None, thresholds: Thresholds):
    """(promote?, reason): the candidate must pass the gate and beat production on the same
    holdout by average precision."""
    failures = gate_failures(candidate, thresholds)
    if failures:
        return False, "gate failed: " + "; ".join(failures)
    if production is None:
        return True, "no production model yet"
    if candidate["average_precision"] <= production["average_precision"]:
        return False, (
            f"not better than production: average precision {candidate['average_precision']:.4f}"
            f" <= {production['average_precision']:.4f}"
        )
    return True, (
        f"average precision {candidate['average_precision']:.4f} > production "
        f"{production['average_precision']:.4f}"
    )
