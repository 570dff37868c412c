"""Comparing a computed feature value with the expected one."""

from __future__ import annotations

import math


def same(a, b) -> bool:
    """Equal, with float tolerance, and null (None or NaN) equal only to null."""
    a = None if a is None or (isinstance(a, float) and math.isnan(a)) else a
    b = None if b is None or (isinstance(b, float) and math.isnan(b)) else b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
