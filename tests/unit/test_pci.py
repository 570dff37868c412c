"""Card data: what may be stored of a card, how card numbers are found, how text is masked."""

import logging

import pytest

from fraud_platform.governance.pci import (
    card_token,
    find_pans,
    protect_card,
    redact,
)

VISA = "4111111111111111"  # a test number that passes the Luhn check


def test_only_the_last_four_digits_and_a_keyed_token_are_kept():
    kept = protect_card("4111 1111 1111 1111")
    assert kept == {"card_last4": "1111", "card_token": card_token(VISA)}
    assert VISA not in str(kept)
    assert card_token(VISA, b"another key") != kept["card_token"]  # keyed
    assert protect_card(VISA)["card_token"] == kept["card_token"]  # stable per card


def test_tokens_never_look_like_card_numbers_to_the_scanner():
    """The scanner must pass a store full of tokens: 20,000 of them hold no PAN-like run (hex
    tokens would: 36 of these 20,000 hold a run of 13+ digits that passes as a card number)."""
    tokens = [card_token(f"4{i:015d}") for i in range(20_000)]
    assert len(set(tokens)) == len(tokens)
    assert all(len(t) == 52 and t.isalnum() and t == t.lower() for t in tokens)
    assert find_pans(" ".join(tokens)) == []


def test_a_non_card_number_is_refused():
    with pytest.raises(ValueError, match="not a card number"):
        protect_card("4111111111111112")  # fails Luhn


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f"pan={VISA};", [VISA]),
        ("card 4111-1111-1111-1111 declined", [VISA]),
        ("5500 0000 0000 0004", ["5500000000000004"]),
        ("order 4111111111111112 (fails Luhn)", []),
        ("txn_1234567890123", []),  # 13 digits failing Luhn
        ("sim5-20250604-0000003", []),  # an id with digit groups, not a card's
        ("20250604-0000003 and 2025 0604 0000 0034", []),
        ("4111-1111 1111-1111", []),  # mixed separators: no card is printed so
        ("9111111111111111 passes Luhn, no network starts with 9", []),
        ("amex 3782 822463 10005", ["378282246310005"]),
        ("amount 127.50 at 2024-12-12T10:30:45", []),
    ],
)
def test_card_numbers_are_found_by_shape_and_luhn(text, found):
    assert find_pans(text) == found


def test_redaction_masks_card_numbers_and_emails():
    assert redact(f"{VISA} from jane.doe@example.com") == "****1111 from <email>"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_every_log_record_of_a_platform_process_is_redacted():
    logger = logging.getLogger("any.library.at.all")  # not a platform logger
    collect = Collect()
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        logger.info("charging %s for %s", VISA, "jane@example.com")
    finally:
        logger.removeHandler(collect)
    assert collect.messages == ["charging ****1111 for <email>"]


def test_masking_bytes_keeps_an_avro_record_decodable():
    from fraud_platform.contracts import TRANSACTION
    from fraud_platform.governance.pci import mask_pans_in_bytes

    record = {"transaction_id": "t-1", "user_id": "u", "merchant_id": "m", "amount": 1.0,
              "currency": "EUR", "timestamp": 1, "location": None, "country": "FR",
              "device": None, "device_id": None, "channel": None, "card_last4": VISA}  # fmt: skip
    encoded = TRANSACTION.encode(record)
    masked = mask_pans_in_bytes(encoded)
    assert len(masked) == len(encoded) and VISA.encode() not in masked
    assert TRANSACTION.decode(masked)["card_last4"] == "************1111"
    assert TRANSACTION.decode(masked)["transaction_id"] == "t-1"
    clean = TRANSACTION.encode(record | {"card_last4": "1111"})
    assert mask_pans_in_bytes(clean) is clean
