"""Layer 2 on the stream: the monitoring job's window measurements, and the suite on them.

fraud_streaming.monitoring (what Flink job 3 runs per message) measures a window of enriched
messages; every figure is compared with pandas and numpy over the same records. Then the
streaming suite passes a calm window and fails, with an alert naming the cause, a drifted
one, a schema change and slow processing.
"""

import random
import struct

import numpy as np
import pandas as pd
import pytest
from fraud_streaming.monitoring import WindowStats

from fraud_platform.alerts import Alerter
from fraud_platform.contracts import ENRICHED_TRANSACTION
from fraud_platform.features.stream import enriched_feature_names
from fraud_platform.quality import drift
from fraud_platform.quality.streaming import validate_window

FEATURES = enriched_feature_names()
NUMERIC = ["amount", "user_avg_amount_30d", "user_transaction_count_1h"]
NOW = 1_750_000_000_000
ENRICHED = {"id": ENRICHED_TRANSACTION.schema_id, "schema": ENRICHED_TRANSACTION.wire_schema}


def features(rng: random.Random, scale: float = 1.0) -> dict:
    """The measured features first, so their draws do not depend on the catalog's size."""
    amount = round(rng.lognormvariate(3, 1) * scale, 2)
    average = None if rng.random() < 0.1 else rng.lognormvariate(3, 0.5)
    count = float(rng.randrange(5))
    values = {name: None if rng.random() < 0.2 else rng.random() for name in FEATURES}
    values["merchant_category"] = rng.choice(["grocery", "travel", None])
    values["amount"], values["user_avg_amount_30d"] = amount, average
    values["user_transaction_count_1h"] = count
    return values


def records(count: int, seed: int, scale: float = 1.0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "transaction_id": f"t{i}",
            "user_id": f"u{i % 17}",
            "merchant_id": f"m{i % 5}",
            "timestamp": NOW - rng.randrange(1, 20_000),
            "features": features(rng, scale),
            "feature_version": "v1",
        }
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def spec() -> dict:
    reference = pd.DataFrame([r["features"] for r in records(3_000, seed=1)])
    return {
        "contracts": {"enriched": ENRICHED},
        "monitoring": {
            "features": FEATURES,
            "references": {n: drift.reference(reference[n]) for n in NUMERIC},
            "missing_baseline": {n: float(reference[n].isna().mean()) for n in FEATURES},
            "spike_amount": 300.0,
            "spike_average": 15.0,
        },
    }


def measured(spec: dict, messages: list[bytes]) -> dict:
    """Two halves accumulated apart and merged, as Flink may do."""
    stats = WindowStats(spec)
    halves = [stats.empty(), stats.empty()]
    for i, message in enumerate(messages):
        stats.add(halves[i % 2], message, now_ms=NOW)
    return stats.summary(WindowStats.merge(*halves), NOW - 60_000, NOW)


def test_a_window_is_measured_exactly(spec):
    window = records(800, seed=2)
    window[1]["features"] |= {"amount": 500.0, "user_avg_amount_30d": 10.0}  # a spike
    changed = dict(window[0], transaction_id="x1", features=dict(window[0]["features"]))
    del changed["features"]["user_avg_amount_1h"]
    foreign = struct.pack(">bI", 0, 999) + b"\x02ab"
    messages = [ENRICHED_TRANSACTION.encode(r) for r in [*window, changed]]
    summary = measured(spec, [*messages, foreign, b"not avro"])

    frame = pd.DataFrame([r["features"] for r in [*window, changed]])
    assert summary["volume"] == 801
    assert summary["schema_changes"] == 2 and summary["undecodable"] == 1
    assert summary["features_removed"] == ["user_avg_amount_1h"]
    for name in FEATURES:
        assert summary["missing_rate"][name] == pytest.approx(frame[name].isna().mean())
    for name in NUMERIC:
        points = spec["monitoring"]["references"][name]["points"]
        got = summary["distributions"][name]
        assert got["rows"] == frame[name].notna().sum()
        assert got["cdf"] == pytest.approx(list(drift.cdf_at(frame[name], points)))
    lags = NOW - np.array([r["timestamp"] for r in [*window, changed]])
    for p in (50, 95, 99):
        exact = np.percentile(lags, p, method="inverted_cdf")
        assert exact <= summary["lag_ms"][f"p{p}"] <= exact * 1.1 + 0.1
    amounts = frame["amount"]
    assert summary["amount_min"] == amounts.min() and summary["amount_max"] == amounts.max()
    assert summary["amount_mean"] == pytest.approx(amounts.mean())
    spikes = (amounts > 300.0) & (frame["user_avg_amount_30d"] < 15.0)
    assert spikes.sum() > 0
    assert summary["spike_rate"] == pytest.approx(spikes.mean())


def window(spec: dict, seed: int, scale: float = 1.0, count: int = 600) -> dict:
    return measured(spec, [ENRICHED_TRANSACTION.encode(r) for r in records(count, seed, scale)])


def test_the_streaming_suite_passes_a_calm_window(spec, tmp_path):
    """Calm: 2,000 rows, so no feature's missing share strays 5 points from the baseline's by
    chance (its spread is 0.9 point; 4% of 67 features would at 600 rows)."""
    alerter = Alerter(tmp_path / "alerts.jsonl")
    outcome, frame = validate_window(window(spec, seed=3, count=2_000), alerter)
    assert outcome.success, [f.summary() for f in outcome.failures]
    assert set(frame.loc[frame["metric"] == "psi", "subject"]) == set(NUMERIC)
    assert alerter.recent() == []


def test_drift_schema_changes_and_lag_fail_and_alert(spec, tmp_path):
    alerter = Alerter(tmp_path / "alerts.jsonl")
    outcome, _ = validate_window(window(spec, seed=4, scale=20.0), alerter)
    assert not outcome.success
    (alert,) = alerter.recent()
    assert alert.severity == "WARN" and alert.title.startswith("window ")
    assert "psi:" in alert.detail and "amount" in alert.detail

    broken = dict(window(spec, seed=5), schema_changes=3, lag_ms={"p95": 90_000.0, "p99": 1e6})
    outcome, _ = validate_window(broken, alerter)
    assert {f.condition for f in outcome.failures} == {
        "schema_changes",
        "lag_p95_ms",
        "lag_p99_ms",
    }
    missing = window(spec, seed=6)
    missing["missing_rate"]["distance_from_home_km"] = 0.9
    outcome, _ = validate_window(missing, alerter)
    assert [f.condition for f in outcome.failures] == ["missing_rate_increase"]
    assert "distance_from_home_km" in alerter.recent()[0].detail
