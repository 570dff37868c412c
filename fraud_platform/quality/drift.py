"""Distribution statistics the quality layers compare against a reference: PSI, KS, single
feature AUC. Plain numpy so the GX metrics, the loaders that build references and the
dashboard all compute them one way.

A reference is a column's empirical CDF on a fixed quantile grid of the reference data:
{"points": [q_1, ..., q_k], "cdf": [F_ref(q_1), ..., F_ref(q_k)]} with F(x) = share <= x.
It is small (k <= 19), JSON-safe, and enough for both statistics:
- PSI over the bins (-inf, q_1], (q_1, q_2], ..., (q_k, inf) (up to 20 near-equal-mass bins);
- KS as the largest CDF gap at the grid points (a lower bound of the two-sample statistic,
  exact to within one grid step of 5%).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

GRID = np.linspace(0.05, 0.95, 19)
FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite


def _finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray(values, dtype="float64")
    return array[np.isfinite(array)]


def reference(values: Iterable[float]) -> dict[str, list[float]] | None:
    """The reference of a column's values (None when it has no finite value)."""
    array = _finite(values)
    if array.size == 0:
        return None
    points = np.unique(np.quantile(array, GRID, method="inverted_cdf"))
    return {"points": points.tolist(), "cdf": cdf_at(array, points).tolist()}


def cdf_at(values: Iterable[float], points: Iterable[float]) -> np.ndarray:
    """Share of the finite values <= each point (zeros when there are none)."""
    array = np.sort(_finite(values))
    grid = np.asarray(points, dtype="float64")
    if array.size == 0:
        return np.zeros(grid.size)
    return np.searchsorted(array, grid, side="right") / array.size


def psi(reference_cdf: Iterable[float], current_cdf: Iterable[float]) -> float:
    """Population stability index between two CDFs on the same grid."""
    expected = np.clip(np.diff(np.concatenate([[0.0], reference_cdf, [1.0]])), FLOOR, None)
    actual = np.clip(np.diff(np.concatenate([[0.0], current_cdf, [1.0]])), FLOOR, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference_cdf: Iterable[float], current_cdf: Iterable[float]) -> float:
    """Largest CDF gap on the grid."""
    gap = np.abs(np.asarray(reference_cdf, float) - np.asarray(current_cdf, float))
    return float(gap.max()) if gap.size else 0.0


def compare(
    references: Mapping[str, Mapping[str, list[float]] | None],
    current: Mapping[str, Iterable[float]],
    statistic: Any,
) -> dict[str, float]:
    """`statistic` (psi or ks) per column that has a reference."""
    return {
        column: round(statistic(ref["cdf"], current[column]), 6)
        for column, ref in references.items()
        if ref is not None and column in current
    }


def correlations(frame: Any, columns: list[str], pairs: list[str] | None = None) -> dict:
    """{"a|b": Pearson r} of the numeric `columns` of a pandas frame, each pair once (or only
    `pairs`); pairs without a defined r (a constant column) are left out."""
    present = [c for c in columns if c in frame.columns]
    wanted = None if pairs is None else set(pairs)
    matrix = frame[present].astype("float64").corr()
    found = {}
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            key = f"{a}|{b}"
            r = matrix.at[a, b]
            if (wanted is None or key in wanted) and np.isfinite(r):
                found[key] = round(float(r), 6)
    return found


def single_feature_auc(values: Iterable[float], labels: Iterable[int]) -> float | None:
    """How well one feature alone separates the labels: max(AUC, 1 - AUC), nulls dropped;
    None when a class is missing. Near 1.0 means the feature all but is the label."""
    from sklearn.metrics import roc_auc_score

    x = np.asarray(values, dtype="float64")
    y = np.asarray(labels, dtype="int64")
    keep = np.isfinite(x)
    x, y = x[keep], y[keep]
    if y.size == 0 or y.min() == y.max():
        return None
    auc = float(roc_auc_score(y, x))
    return max(auc, 1.0 - auc)
