"""The Layer-1 rules, including property tests: random input never crashes the rules."""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_platform.contracts import TRANSACTION
from fraud_platform.ingestion.rules import INCOMPLETE, SCHEMA_ERRORS, Rules

NOW = 1_764_000_000_000
RULES = Rules()


def valid(**overrides) -> dict:
    record = {
        "transaction_id": "txn_1",
        "user_id": "user_1",
        "merchant_id": "merch_1",
        "amount": 12.5,
        "currency": "USD",
        "timestamp": NOW - 1000,
        "location": {"lat": 40.7, "lon": -74.0},
        "card_last4": "4242",
    }
    record.update(overrides)
    return record


def test_a_valid_record_passes():
    record, rejection = RULES.check(TRANSACTION.encode(valid()), NOW)
    assert rejection is None and record["transaction_id"] == "txn_1"


def test_each_rule_names_the_field():
    cases = {
        "amount 0.0 is not in": valid(amount=0.0),
        "currency 'ABC'": valid(currency="ABC"),
        "ahead of the validator's clock": valid(timestamp=NOW + 3_600_000),
        "days old": valid(timestamp=NOW - 30 * 86_400_000),
        "is not on Earth": valid(location={"lat": 0.0, "lon": 200.0}),
        "card_last4 has 16 characters": valid(card_last4="4242424242424242"),
    }
    for expected, record in cases.items():
        rejection = RULES.check_record(record, NOW)
        assert rejection is not None and rejection.dlq == SCHEMA_ERRORS, expected
        assert expected in rejection.detail
    assert (
        "4242424242424242"
        not in RULES.check_record(cases["card_last4 has 16 characters"], NOW).detail
    )


def test_missing_required_fields_go_to_incomplete():
    rejection = RULES.check_record(valid(merchant_id=None, amount=None), NOW)
    assert rejection.dlq == INCOMPLETE
    assert rejection.detail == "required field(s) missing: merchant_id, amount"


def test_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FRAUD_VALIDATOR_MAX_AMOUNT", "100")
    monkeypatch.setenv("FRAUD_VALIDATOR_EXTRA_CURRENCIES", "xbt")
    rules = Rules.from_env()
    assert rules.check_record(valid(amount=150.0), NOW).reason == "amount_out_of_range"
    assert rules.check_record(valid(currency="XBT"), NOW) is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_and_are_always_classified(data):
    record, rejection = RULES.check(data, NOW)
    assert (rejection is None) == (record is not None and RULES.check_record(record, NOW) is None)
    if rejection is not None:
        assert rejection.reason and rejection.detail


optional_text = st.one_of(st.none(), st.text(max_size=20))
records = st.fixed_dictionaries(
    {
        "transaction_id": optional_text,
        "user_id": optional_text,
        "merchant_id": optional_text,
        "amount": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
        "currency": st.one_of(st.none(), st.sampled_from(["USD", "EUR", "???", ""])),
        "timestamp": st.one_of(st.none(), st.integers(min_value=0, max_value=2**62)),
        "location": st.one_of(
            st.none(),
            st.fixed_dictionaries({"lat": st.floats(allow_nan=True), "lon": st.floats()}),
        ),
        "card_last4": optional_text,
        "declined": st.one_of(st.none(), st.booleans()),
    }
)


@settings(max_examples=500, deadline=None)
@given(records)
def test_random_records_encode_and_are_always_classified(record):
    decoded, rejection = RULES.check(TRANSACTION.encode(record), int(time.time() * 1000))
    assert decoded is not None
    assert rejection is None or rejection.dlq in {SCHEMA_ERRORS, INCOMPLETE}
