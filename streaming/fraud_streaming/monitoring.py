"""Job 3's measurements: what one window of enriched transactions looked like.

The accumulator is plain data (it lives in Flink's window state, pickled) and additive, so
windows merge and a replay after a failure measures the same. A window's summary carries
everything the Layer-2 suite needs, and nothing it has to look up: volume, each feature's
missing share, the numeric features' CDF at their reference's quantile points (with the
reference, so PSI needs no second source), event-to-processing lag percentiles, schema
changes, undecodable messages, and the amount figures of the design's spike rule.
"""

from __future__ import annotations

import bisect
import math
import struct
import time
from typing import Any

from fraud_streaming.records import HEADER, HEADER_SIZE, Codec

LAG_STEP = 1.1  # lag buckets grow by 10%, so a percentile is exact to within 10%
PERCENTILES = (50, 95, 99)
EXAMPLES = 5  # changed feature names kept per window


def lag_bucket(lag_ms: float) -> int:
    return 0 if lag_ms < 1 else 1 + int(math.log(lag_ms, LAG_STEP))


def bucket_upper_ms(bucket: int) -> float:
    return 1.0 if bucket == 0 else LAG_STEP**bucket


class WindowStats:
    """Adds enriched messages to a window's accumulator and summarises it."""

    def __init__(self, spec: dict) -> None:
        monitoring = spec["monitoring"]
        self.codec = Codec(spec["contracts"]["enriched"])
        self.expected = monitoring["features"]
        self.expected_set = frozenset(self.expected)
        self.references = monitoring["references"]
        self.missing_baseline = monitoring["missing_baseline"]
        self.spike_amount = monitoring["spike_amount"]
        self.spike_average = monitoring["spike_average"]

    def empty(self) -> dict[str, Any]:
        return {
            "volume": 0,
            "missing": dict.fromkeys(self.expected, 0),
            "at_or_below": {f: [0] * len(r["points"]) for f, r in self.references.items()},
            "present": dict.fromkeys(self.references, 0),
            "lag": {},
            "amount": {"min": None, "max": None, "sum": 0.0, "count": 0},
            "spikes": 0,
            "schema_changes": 0,
            "added": [],
            "removed": [],
            "undecodable": 0,
        }

    def add(self, acc: dict[str, Any], message: bytes, now_ms: int | None = None) -> dict:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        try:
            record = self.codec.decode(message)
        except Exception:
            foreign = len(message) >= HEADER_SIZE and struct.unpack_from(HEADER, message)[0] == 0
            acc["schema_changes" if foreign else "undecodable"] += 1
            return acc
        features = record["features"]
        acc["volume"] += 1
        self._shape(acc, features)
        for name, reference in self.references.items():
            value = features.get(name)
            if isinstance(value, float) and math.isfinite(value):
                acc["present"][name] += 1
                counts = acc["at_or_below"][name]
                for i in range(bisect.bisect_left(reference["points"], value), len(counts)):
                    counts[i] += 1
        bucket = str(lag_bucket(now_ms - record["timestamp"]))
        acc["lag"][bucket] = acc["lag"].get(bucket, 0) + 1
        self._amount(acc, features)
        return acc

    def _shape(self, acc: dict, features: dict) -> None:
        """Missing values, and a feature set other than the catalog's (a schema change)."""
        for name in self.expected:
            if features.get(name) is None:
                acc["missing"][name] += 1
        names = features.keys()
        if names != self.expected_set:
            acc["schema_changes"] += 1
            added, removed = names - self.expected_set, self.expected_set - names
            acc["added"] = sorted(set(acc["added"]) | added)[:EXAMPLES]
            acc["removed"] = sorted(set(acc["removed"]) | removed)[:EXAMPLES]

    def _amount(self, acc: dict, features: dict) -> None:
        amount, average = features.get("amount"), features.get("user_avg_amount_30d")
        if not isinstance(amount, float):
            return
        figures = acc["amount"]
        figures["min"] = amount if figures["min"] is None else min(figures["min"], amount)
        figures["max"] = amount if figures["max"] is None else max(figures["max"], amount)
        figures["sum"] += amount
        figures["count"] += 1
        if amount > self.spike_amount and average is not None and average < self.spike_average:
            acc["spikes"] += 1

    @staticmethod
    def merge(a: dict, b: dict) -> dict:
        merged = dict(a)
        for key in ("volume", "spikes", "schema_changes", "undecodable"):
            merged[key] = a[key] + b[key]
        merged["missing"] = {k: v + b["missing"][k] for k, v in a["missing"].items()}
        merged["present"] = {k: v + b["present"][k] for k, v in a["present"].items()}
        merged["at_or_below"] = {k: [x + y for x, y in zip(v, b["at_or_below"][k], strict=True)]
                                 for k, v in a["at_or_below"].items()}  # fmt: skip
        merged["lag"] = {k: a["lag"].get(k, 0) + b["lag"].get(k, 0) for k in a["lag"] | b["lag"]}
        amounts = [x["amount"] for x in (a, b) if x["amount"]["count"]]
        merged["amount"] = {
            "min": min((x["min"] for x in amounts), default=None),
            "max": max((x["max"] for x in amounts), default=None),
            "sum": a["amount"]["sum"] + b["amount"]["sum"],
            "count": a["amount"]["count"] + b["amount"]["count"],
        }
        merged["added"] = sorted(set(a["added"]) | set(b["added"]))[:EXAMPLES]
        merged["removed"] = sorted(set(a["removed"]) | set(b["removed"]))[:EXAMPLES]
        return merged

    def summary(self, acc: dict, start_ms: int, end_ms: int) -> dict[str, Any]:
        volume, amount = acc["volume"], acc["amount"]
        return {
            "window_start_ms": start_ms,
            "window_end_ms": end_ms,
            "volume": volume,
            "missing_rate": {k: v / volume for k, v in acc["missing"].items()} if volume else {},
            "missing_baseline": self.missing_baseline,
            "distributions": {
                name: {
                    "rows": acc["present"][name],
                    "reference": self.references[name],
                    "cdf": [c / acc["present"][name] for c in acc["at_or_below"][name]],
                }
                for name in self.references
                if acc["present"][name]
            },
            "lag_ms": _percentiles(acc["lag"]),
            "schema_changes": acc["schema_changes"],
            "features_added": acc["added"],
            "features_removed": acc["removed"],
            "undecodable": acc["undecodable"],
            "amount_min": amount["min"],
            "amount_max": amount["max"],
            "amount_mean": amount["sum"] / amount["count"] if amount["count"] else None,
            "spike_rate": acc["spikes"] / volume if volume else None,
            "measured_at_ms": int(time.time() * 1000),
        }


def _percentiles(histogram: dict[str, int]) -> dict[str, float]:
    """Upper bounds of the buckets holding each percentile of the lags."""
    total = sum(histogram.values())
    if not total:
        return {}
    found, seen = {}, 0
    wanted = list(PERCENTILES)
    for bucket in sorted(histogram, key=int):
        seen += histogram[bucket]
        while wanted and seen >= total * wanted[0] / 100:
            found[f"p{wanted.pop(0)}"] = round(bucket_upper_ms(int(bucket)), 1)
    return found
