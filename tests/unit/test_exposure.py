"""What Dagster's UI may show: previews and check samples hide who and where (its event log
keeps them, its webserver serves them)."""

import pandas as pd

from fraud_platform.batch.metadata import preview
from fraud_platform.governance.exposure import HIDDEN


def test_a_preview_hides_personal_and_card_columns():
    row = {"transaction_id": "t-1", "user_id": "user_42", "merchant_id": "m-7", "amount": 12.5,
           "lat": 48.85, "lon": 2.35, "card_last4": "4242", "card_token": "a" * 52,
           "device_id": "dev-9"}  # fmt: skip
    text = preview([row]).value
    for secret in ("user_42", "48.85", "2.35", "4242", "a" * 52, "dev-9"):
        assert secret not in text
    assert "t-1" in text and "m-7" in text and "12.5" in text and HIDDEN in text


def test_a_failed_checks_sample_hides_personal_values():
    from fraud_platform.quality.runner import validate_suite

    frame = pd.DataFrame({"user_id": ["user_1", "user_2"], "amount": [-1.0, 5.0]})
    suite = {"name": "toy", "expectations": [
        {"type": "expect_column_values_to_match_regex",
         "kwargs": {"column": "user_id", "regex": "^u-"}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "amount", "min_value": 0}},
    ]}  # fmt: skip
    outcome = validate_suite(frame, suite, {})
    samples = {f.column: f.sample for f in outcome.failures}
    assert samples == {"user_id": [HIDDEN, HIDDEN], "amount": [-1.0]}
