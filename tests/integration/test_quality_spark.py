"""The custom expectations that run on Spark reach the same verdicts and observations as on
pandas, on the same rows (the shared SparkSession)."""

import numpy as np
import pandas as pd
import pytest

from fraud_platform.quality import drift
from fraud_platform.quality.runner import validate_suite

pytestmark = pytest.mark.integration


def both(spark, frame: pd.DataFrame, kind: str, **kwargs) -> list:
    suite = {"name": f"test/{kind}", "expectations": [{"type": kind, "kwargs": kwargs}]}
    results = []
    for data in (frame, spark.createDataFrame(frame)):
        (result,) = validate_suite(data, suite, {}).result.results
        results.append((result.success, result.result["observed_value"]))
    return results


def test_drift_on_spark_matches_pandas(spark):
    rng = np.random.default_rng(2)
    references = {"amount": drift.reference(rng.lognormal(3, 1, 10_000))}
    frame = pd.DataFrame({"amount": rng.lognormal(3.6, 1, 3000)})
    frame.loc[::10, "amount"] = np.nan  # nulls are not values
    for kind in ("expect_columns_psi_to_be_less_than",
                 "expect_columns_ks_statistic_to_be_less_than"):  # fmt: skip
        on_pandas, on_spark = both(spark, frame, kind, references=references)
        assert on_pandas[0] is on_spark[0] is False
        assert on_spark[1]["amount"] == pytest.approx(on_pandas[1]["amount"], abs=1e-6)


def test_time_order_and_spikes_on_spark_match_pandas(spark):
    frame = pd.DataFrame(
        {
            "ts_ms": range(200),
            "split": ["train"] * 150 + ["test"] * 50,
            "amount": [30.0] * 185 + [12_000.0] * 15,
            "avg": 40.0,
        }
    )
    frame.loc[3, "split"] = "test"
    ordered = both(spark, frame, "expect_splits_to_be_time_ordered", time_column="ts_ms")
    assert ordered[0] == ordered[1] == (False, {"earlier_max": 149, "later_min": 3})
    spikes = both(spark, frame, "expect_amount_spike_rate_to_be_below", average_column="avg")
    assert spikes[0] == spikes[1] == (False, 0.075)
