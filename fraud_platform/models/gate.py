"""The promotion rule, in one place: every layer-5 suite (quality_suites/posttraining) must
pass.

The same suites run as asset checks on models/evaluation (visible in the UI; a broken model
fails the run there) and here, when the production asset decides, so a promotion launched on
its own is gated too, and a candidate that is merely not better keeps production without
failing the night.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fraud_platform.quality import loaders
from fraud_platform.quality.checks import run_suite
from fraud_platform.quality.suites import check_named

# Layer 5: the suites that guard promotion, each with what it validates.
POSTTRAINING = {
    "posttraining/model_scores": loaders.model_scores,
    "posttraining/versus_production": loaders.model_scores,
    "posttraining/feature_importance": loaders.feature_importance,
}


@dataclass(frozen=True)
class Thresholds:
    review: float = 0.5  # the score from which a transaction goes to review
    top_k: int = 100  # cards investigators check a day: card precision@k's k

    @classmethod
    def from_env(cls) -> Thresholds:
        return cls(
            review=float(os.environ.get("FRAUD_REVIEW_THRESHOLD", cls.review)),
            top_k=int(os.environ.get("FRAUD_CARD_PRECISION_K", cls.top_k)),
        )

    def suite_parameters(self) -> dict[str, Any]:
        """What the layer-5 suites take from here rather than from checks.yaml."""
        return {"review_threshold": self.review, "top_k": self.top_k}


def promotion_decision(lake: Any, day: str) -> tuple[bool, str]:
    """(promote?, why): every layer-5 expectation met by the day's candidate."""
    parameters = Thresholds.from_env().suite_parameters()
    failures = []
    for suite, load in POSTTRAINING.items():
        outcome = run_suite(check_named(suite), load({"lake": lake}, day), lake, day, **parameters)
        failures += [f.summary() for f in outcome.failures]
    if failures:
        return False, "layer 5 failed: " + "; ".join(failures)
    return True, "layer 5 passed: a sane model, better than production (or the first)"
