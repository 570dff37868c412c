"""The Layer-1 rules (native kernel), including property tests: random input never crashes
the rules, and the kernel's Avro decoding agrees with fastavro, which every consumer uses."""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_platform.contracts import FRAUD_LABEL, TRANSACTION, ContractError, decode_any
from fraud_platform.contracts.registry import versions
from fraud_platform.governance.pci import card_token
from fraud_platform.ingestion.rules import INCOMPLETE, SCHEMA_ERRORS, Rules

NOW = 1_764_000_000_000
VISA = "4111111111111111"
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
        "card_token": card_token(VISA),
    }
    record.update(overrides)
    return record


def test_a_valid_record_passes():
    verdict = RULES.check(TRANSACTION.encode(valid()), NOW)
    assert verdict.rejection is None
    assert (verdict.transaction_id, verdict.user_id) == ("txn_1", "user_1")


def test_a_producer_still_on_transaction_v1_is_accepted():
    v1 = versions("transaction")[0]
    record = {k: v for k, v in valid().items() if k != "card_token"}
    verdict = RULES.check(v1.encode(record), NOW)
    assert verdict.rejection is None and verdict.transaction_id == "txn_1"


def test_a_batch_keeps_order_and_names_each_reject():
    values = [
        TRANSACTION.encode(valid(transaction_id="a")),
        b"not avro",
        None,
        FRAUD_LABEL.encode(
            {
                "transaction_id": "a",
                "is_fraud": True,
                "transaction_time": NOW,
                "investigation_complete_time": NOW,
            }
        ),
        TRANSACTION.encode(valid(transaction_id="b", amount=-1.0)),
        TRANSACTION.encode(valid(transaction_id="c")) + b"x",
        b"\x00" + b"\xff" * 4 + b"body",
        TRANSACTION.encode(valid(transaction_id="d")),
    ]
    verdicts = RULES.check_batch(values, NOW)
    assert [v[0] for v in verdicts] == ["a", None, None, None, "b", None, None, "d"]
    assert [v[2] and v[2][1] for v in verdicts] == [
        None,
        "undecodable",
        "empty_message",
        "wrong_contract",
        "amount_out_of_range",
        "undecodable",
        "undecodable",
        None,
    ]
    assert (
        verdicts[5][2][2]
        == "1 bytes left after a transaction v2 record: not written with this schema"
    )
    assert verdicts[6][2][2] == "schema id 4294967295 is not registered"


def test_oversized_messages_are_rejected_before_decoding():
    rules = Rules(max_message_bytes=100)
    rejection = rules.check(TRANSACTION.encode(valid(device_id="x" * 200)), NOW).rejection
    assert rejection.reason == "oversized" and "more than the 100 allowed" in rejection.detail


def test_each_rule_names_the_field():
    cases = {
        "amount 0.0 is not in": valid(amount=0.0),
        'currency "ABC"': valid(currency="ABC"),
        "ahead of the validator's clock": valid(timestamp=NOW + 3_600_000),
        "days old": valid(timestamp=NOW - 30 * 86_400_000),
        "is not on Earth": valid(location={"lat": 0.0, "lon": 200.0}),
        "card_last4 has 16 characters": valid(card_last4="4242424242424242"),
        "card_token has 16 characters": valid(card_token="4242424242424242"),
        "card_token has 52 characters, not the 52": valid(card_token="A" * 52),  # not base32
    }
    for expected, record in cases.items():
        rejection = RULES.check_record(record, NOW)
        assert rejection is not None and rejection.dlq == SCHEMA_ERRORS, expected
        assert expected in rejection.detail
    for field in ("card_last4", "card_token"):  # a number in the wrong place is never echoed
        detail = RULES.check_record(cases[f"{field} has 16 characters"], NOW).detail
        assert "4242424242424242" not in detail
    assert RULES.check_record(valid(card_token=card_token(VISA)), NOW) is None


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


def fastavro_reads(data: bytes) -> dict | None:
    try:
        return decode_any(data)[1]
    except ContractError:
        return None


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_and_are_always_classified(data):
    verdict = RULES.check(data, NOW)
    assert verdict.rejection is None or (verdict.rejection.reason and verdict.rejection.detail)
    if verdict.rejection is None or verdict.rejection.reason != "undecodable":
        # Whatever the kernel decodes, fastavro decodes to the same ids.
        record = fastavro_reads(data)
        assert record is not None
        assert record.get("transaction_id") == verdict.transaction_id


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=120))
def test_framed_random_bodies_decode_alike_in_kernel_and_fastavro(body):
    """Random bodies behind a valid transaction header: the kernel is never more lenient than
    fastavro, and when both decode they read the same ids."""
    data = b"\x00\x00\x00\x00\x01" + body
    verdict = RULES.check(data, NOW)
    record = fastavro_reads(data)
    if record is None:
        assert verdict.rejection is not None and verdict.rejection.reason == "undecodable"
    elif verdict.rejection is None or verdict.rejection.reason != "undecodable":
        assert (verdict.transaction_id, verdict.user_id) == (
            record["transaction_id"],
            record["user_id"],
        )


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
    verdict = RULES.check(TRANSACTION.encode(record), int(time.time() * 1000))
    assert verdict.transaction_id == record["transaction_id"]
    assert verdict.user_id == record["user_id"]
    assert verdict.rejection is None or verdict.rejection.dlq in {SCHEMA_ERRORS, INCOMPLETE}
    if verdict.rejection is None:
        assert record["transaction_id"] and record["user_id"] and record["merchant_id"]
        assert 0 < record["amount"] <= RULES.max_amount


STRING_FIELDS = ("transaction_id", "user_id", "merchant_id", "currency", "country", "device",
                 "device_id", "channel")  # fmt: skip


def test_a_card_number_in_any_string_field_is_rejected_without_echoing_it():
    for field in STRING_FIELDS:
        for printed in (VISA, f"x{VISA}y", "4111 1111 1111 1111", f"{VISA}-store-1"):
            rejection = RULES.check_record(valid(**{field: printed}), NOW)
            assert rejection is not None, (field, printed)
            if field == "currency":  # an unknown currency is found first; still rejected
                continue
            assert rejection.reason == "card_number_in_field", (field, rejection)
            assert rejection.detail == f"{field} holds a card number"


def test_ids_and_floats_that_are_not_card_numbers_pass():
    for merchant in ("sim5-20250604-0000003", "M-76.40374999999999", "4111111111111112"):
        assert RULES.check_record(valid(merchant_id=merchant), NOW) is None


def test_control_and_invisible_characters_are_rejected_in_every_string_field():
    for field in ("merchant_id", "device", "country", "channel", "device_id"):
        for char in ("\u061c", "\U000e0041", "\x1b", "\x00", "\u202e", "\u200b", "\u00a0"):
            rejection = RULES.check_record(valid(**{field: f"a{char}b"}), NOW)
            assert rejection is not None, (field, char)
            assert rejection.reason in ("malformed_id", "unprintable_text")
            if rejection.reason == "unprintable_text":
                assert f"U+{ord(char):04X}" in rejection.detail
    assert RULES.check_record(valid(device="café terminal 2"), NOW) is None


def test_the_text_rule_is_pythons_isprintable_for_every_code_point():
    from fraud_kernel import printable

    surrogates = range(0xD800, 0xE000)  # no Python str of them reaches Rust
    codes = (c for c in range(0x110000) if c not in surrogates)
    assert [c for c in codes if printable(chr(c)) != chr(c).isprintable()] == []


def test_the_verdict_carries_the_payloads_event_time():
    values = [TRANSACTION.encode(valid(timestamp=NOW - 5)), b"junk"]
    assert [v[3] for v in RULES.check_batch(values, NOW)] == [NOW - 5, None]
