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
        ("0" + VISA, [VISA]),  # glued to a digit before it (an Avro length byte)
        ("1" + VISA, []),  # an odd digit is no Avro length
        ("x.4111111111111111", [VISA]),  # a dot alone does not make a fraction
        ("76.40374999999999 and 0.4111111111111111", []),  # digits after a decimal point
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


def test_clean_values_never_look_like_card_numbers():
    """What clean stores are full of: floats (Redis values, Data Docs), hex digests and
    pseudonyms, uuids, epoch timestamps, the simulator's and the handbook's ids."""
    import hashlib
    import random
    import uuid

    rng = random.Random(7)
    floats = [repr(rng.uniform(-1e6, 1e6) / rng.choice([1, 3, 7, 11])) for _ in range(20_000)]
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20_000)]
    md5s = [hashlib.md5(str(i).encode()).hexdigest() for i in range(20_000)]
    uuids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(5_000)]
    # Epoch times from 2018 (the handbook) to 2030, in ms and ns: they start with 1 (until
    # 2033, when ms times start with a card network's 2).
    stamps = [str(1_514_764_800_000 + rng.randrange(4 * 10**11)) for _ in range(5_000)]
    nanos = [f"{int(s) * 10**6 + rng.randrange(10**6)}" for s in stamps]
    ids = [f"sim5-2025{d:04d}-{i:07d}" for d in range(101, 1231, 37) for i in range(0, 9999, 97)]
    handbook = [f"hb-{i}" for i in range(0, 1_754_155, 61)] + [f"{i}" for i in range(0, 10**6, 7)]
    for values in (floats, digests, md5s, uuids, stamps, nanos, ids, handbook):
        assert find_pans(", ".join(values)) == [], values[:3]


def test_a_number_behind_an_avro_length_byte_is_masked_and_found():
    from fraud_platform.contracts import TRANSACTION
    from fraud_platform.governance.pci import mask_pans_in_bytes, mask_text

    device = f"{VISA}-store-1"  # 24 characters: its length byte is "0"
    record = {"transaction_id": f"tx-{VISA}", "user_id": "u", "merchant_id": "m",
              "amount": 1.0, "currency": "EUR", "timestamp": 1, "device": device}  # fmt: skip
    encoded = TRANSACTION.encode(record)
    assert b"0" + VISA.encode() in encoded
    assert find_pans(encoded) == [VISA, VISA]
    masked = TRANSACTION.decode(mask_pans_in_bytes(encoded))
    assert masked["device"] == "************1111-store-1"
    assert (
        masked["transaction_id"] == mask_text(record["transaction_id"]) == "tx-" + "*" * 12 + "1111"
    )


def test_a_file_scan_finds_each_number_once_at_its_offset(monkeypatch):
    """Read in pieces: a number across two pieces is found once, and the same number twice
    in one piece is two findings."""
    import io

    from fraud_platform.governance import pan_scan

    monkeypatch.setattr(pan_scan, "CHUNK", 50)
    data = b"x" * 40 + VISA.encode() + b"y" * 30 + VISA.encode() + b"z" + VISA.encode()
    found = pan_scan._scan_stream("files", "f", io.BytesIO(data))
    assert [(f.where, f.masked) for f in found] == [
        ("f@40", "****1111"),
        ("f@86", "****1111"),
        ("f@103", "****1111"),
    ]
