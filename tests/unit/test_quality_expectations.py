"""The platform's custom GX expectations and the statistics behind them: each is met by a
good batch and fails on the defect it exists for, with what it observed."""

import numpy as np
import pandas as pd
import pytest

from fraud_platform.quality import drift
from fraud_platform.quality.runner import validate_suite

RNG = np.random.default_rng(11)


def expect(frame: pd.DataFrame, kind: str, **kwargs):
    """Validate `frame` against a one-expectation suite; returns GX's result for it."""
    suite = {"name": f"test/{kind}", "expectations": [{"type": kind, "kwargs": kwargs}]}
    outcome = validate_suite(frame, suite, {})
    (result,) = outcome.result.results
    assert result.exception_info.get("raised_exception") is not True, result.exception_info
    return result


# -- the statistics ------------------------------------------------------------------------


def test_psi_and_ks_are_zero_for_the_same_distribution_and_large_for_a_shift():
    base = RNG.normal(100, 20, 20_000)
    ref = drift.reference(base)
    same = drift.cdf_at(RNG.normal(100, 20, 20_000), ref["points"])
    shifted = drift.cdf_at(RNG.normal(130, 20, 20_000), ref["points"])
    assert drift.psi(ref["cdf"], same) < 0.01
    assert drift.ks(ref["cdf"], same) < 0.02
    assert drift.psi(ref["cdf"], shifted) > 0.25
    assert drift.ks(ref["cdf"], shifted) > 0.4


def test_a_reference_handles_ties_nulls_and_emptiness():
    counts = np.array([0, 0, 0, 1, 1, 2, np.nan, np.inf] * 100)
    ref = drift.reference(counts)
    assert ref["points"] == [0.0, 1.0, 2.0]  # unique quantiles only
    assert ref["cdf"] == pytest.approx([0.5, 5 / 6, 1.0])
    assert drift.reference([np.nan, None]) is None


def test_correlations_and_single_feature_auc():
    x = RNG.normal(size=5000)
    frame = pd.DataFrame({"x": x, "twice": 2 * x, "noise": RNG.normal(size=5000), "flat": 1.0})
    found = drift.correlations(frame, ["x", "twice", "noise", "flat"])
    assert found["x|twice"] == pytest.approx(1.0)
    assert abs(found["x|noise"]) < 0.05
    assert not any("flat" in pair for pair in found)  # undefined r is left out
    labels = (x > 1).astype(int)
    assert drift.single_feature_auc(x, labels) == pytest.approx(1.0)
    assert drift.single_feature_auc(-x, labels) == pytest.approx(1.0)  # inverted counts too
    assert drift.single_feature_auc(x, np.zeros(5000)) is None


# -- the expectations ----------------------------------------------------------------------


def features(n: int = 3000, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"amount": RNG.lognormal(3 + shift, 1, n), "count": RNG.poisson(4, n)})


def test_psi_and_ks_expectations_flag_only_the_shifted_column():
    references = {c: drift.reference(v) for c, v in features(20_000).items()}
    good, bad = features(), features()
    bad["amount"] = bad["amount"] * 3
    limits = {
        "expect_columns_psi_to_be_less_than": {"max_psi": 0.25},
        "expect_columns_ks_statistic_to_be_less_than": {"max_statistic": 0.1},
    }
    for kind, limit in limits.items():
        assert expect(good, kind, references=references, **limit).success
        result = expect(bad, kind, references=references, **limit)
        assert not result.success
        assert result.result["partial_unexpected_list"] == ["amount"]
        assert result.result["unexpected_count"] == 1


def test_drift_is_not_judged_on_too_few_rows():
    references = {c: drift.reference(v) for c, v in features(20_000).items()}
    tiny = features(50, shift=3.0)
    result = expect(tiny, "expect_columns_psi_to_be_less_than", references=references)
    assert result.success and "not compared" in result.result["observed_value"]


def test_correlation_expectation_flags_a_broken_relationship():
    x = RNG.normal(size=4000)
    reference = drift.correlations(pd.DataFrame({"a": x, "b": x + RNG.normal(0, 0.1, 4000)}),
                                   ["a", "b"])  # fmt: skip
    y = RNG.normal(size=4000)
    same = pd.DataFrame({"a": y, "b": y + RNG.normal(0, 0.1, 4000)})
    broken = pd.DataFrame({"a": y, "b": RNG.normal(size=4000)})
    kind = "expect_columns_correlations_to_match_reference"
    assert expect(same, kind, reference=reference).success
    result = expect(broken, kind, reference=reference)
    assert not result.success and result.result["partial_unexpected_list"] == ["a|b"]


def test_time_ordered_splits():
    frame = pd.DataFrame({"ts_ms": range(10), "split": ["train"] * 8 + ["test"] * 2})
    kind = "expect_splits_to_be_time_ordered"
    assert expect(frame, kind, time_column="ts_ms").success
    frame.loc[0, "split"] = "test"  # a test row older than training rows
    result = expect(frame, kind, time_column="ts_ms")
    assert not result.success
    assert result.result["observed_value"] == {"earlier_max": 7, "later_min": 0}


def test_a_feature_that_is_the_label_is_caught():
    labels = (RNG.random(4000) < 0.05).astype(int)
    frame = pd.DataFrame({"amount": RNG.lognormal(3, 1, 4000) * (1 + labels), "label": labels})
    kind = "expect_no_column_to_predict_label_alone"
    assert expect(frame, kind, columns=["amount"]).success
    frame["label_known_later"] = labels + RNG.normal(0, 0.01, 4000)  # leaked from the future
    result = expect(frame, kind, columns=["amount", "label_known_later"])
    assert not result.success
    assert result.result["partial_unexpected_list"] == ["label_known_later"]


def test_dead_letter_rate():
    frame = pd.DataFrame({"transaction_id": [f"t{i}" for i in range(9990)]})
    kind = "expect_dead_letter_rate_to_be_below"
    assert expect(frame, kind, dead_letters=9, max_rate=0.001).success
    result = expect(frame, kind, dead_letters=10, max_rate=0.001)
    assert not result.success
    assert result.result["observed_value"] == {"rate": 0.001, "dead_letters": 10, "volume": 10000}


def test_amount_spikes_against_the_user_average():
    frame = pd.DataFrame({"amount": [50.0] * 96 + [12_000.0] * 4, "avg": [40.0] * 100})
    kind = "expect_amount_spike_rate_to_be_below"
    assert expect(frame, kind, average_column="avg").success  # 4% < 5%
    frame.loc[0:1, "amount"] = 20_000.0
    result = expect(frame, kind, average_column="avg")  # 6%
    assert not result.success and result.result["unexpected_count"] == 6
    frame["avg"] = 500.0  # a big spender: large amounts are normal
    assert expect(frame, kind, average_column="avg").success


def scores(n: int = 2000) -> pd.DataFrame:
    labels = (RNG.random(n) < 0.1).astype(int)
    return pd.DataFrame(
        {
            "label": labels,
            "score": np.clip(0.6 * labels + RNG.random(n) * 0.5, 0, 1),
            "production_score": RNG.random(n),
        }
    )


def test_model_metric_bounds():
    frame = scores()
    kind = "expect_model_metric_to_be_between"
    share = {"metric_name": "predicted_positive_share", "min_value": 0, "max_value": 1}
    assert expect(frame, kind, strict=True, **share).success
    frame["score"] = 0.01  # flags nothing: one class
    result = expect(frame, kind, strict=True, **share)
    assert not result.success and result.result["observed_value"] == 0.0
    floor = {"metric_name": "average_precision", "min_value": 0.5}
    assert not expect(frame, kind, **floor).success


def test_the_candidate_must_beat_the_baseline():
    frame = scores()
    kind = "expect_score_to_beat_baseline"
    assert expect(frame, kind).success
    frame["production_score"] = frame["score"] + 0.01 * frame["label"]  # production is better
    result = expect(frame, kind)
    observed = result.result["observed_value"]
    assert not result.success and observed["production"] >= observed["candidate"]
    frame["production_score"] = np.nan  # no production model yet
    assert expect(frame, kind).success


def test_top_ranked_values():
    importance = pd.DataFrame(
        {
            "feature": ["hour_of_day", "user_total_spend_24h", "amount", "x"],
            "importance": [0.5, 0.3, 0.15, 0.05],
        }
    )
    kind = "expect_top_ranked_values_to_match_regex"
    assert expect(importance, kind, top=3, regex="^amount$").success
    result = expect(importance, kind, top=2, regex="^amount$")
    assert not result.success
    assert result.result["observed_value"] == ["hour_of_day", "user_total_spend_24h"]
