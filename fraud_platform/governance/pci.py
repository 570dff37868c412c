"""Card data protection (PCI-DSS): no full card number (PAN) is ever stored.

- `protect_card` turns a PAN into what may be kept: its last 4 digits and a keyed token
  (HMAC-SHA256 with FRAUD_CARD_TOKEN_KEY), equal for equal cards so a card can still be
  followed across transactions, useless to anyone without the key.
- `find_pans` finds anything that looks like a card number: 13 to 19 digits in one run, or in
  the printed groups of a card (4-4-4-4[-3], Amex 4-6-5) split by spaces or dashes, starting
  with a card network's digit (2-6) and passing the Luhn check. Ids that merely contain digits
  (`sim5-20250604-0000003`) are not card numbers.
- `mask_pans_in_bytes` does the same to a message's raw bytes: what the validator and the
  archiver keep of a rejected or undecodable message (a producer that sent a full number
  gets its record dead-lettered with the number masked, never stored);
- `redact` / `redact_value` mask PANs (keeping the last 4) and e-mail addresses in text and in
  nested values, for logs and the audit log; `install_redaction` does it for every log record
  a process creates (the platform installs it on import).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from typing import Any

from fraud_platform.governance.secrets import signing_key

KEY_ENV = "FRAUD_CARD_TOKEN_KEY"
_CANDIDATE = re.compile(
    r"(?<![\d-])(?:\d{13,19}"
    r"|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?"
    r"|\d{4}([ -])\d{6}\2\d{5})(?![\d-])"
)
NETWORK_DIGITS = "23456"  # Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard, Discover...
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def luhn_sum(digits: str) -> int:
    """Luhn's sum: every second digit from the right doubled (less 9 past 9)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total


def luhn_valid(digits: str) -> bool:
    return luhn_sum(digits) % 10 == 0


def is_pan(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in NETWORK_DIGITS and luhn_valid(digits)


def find_pans(text: str) -> list[str]:
    """The card numbers in `text`, digits only."""
    digit_runs = (re.sub(r"[ -]", "", match.group()) for match in _CANDIDATE.finditer(text))
    return [digits for digits in digit_runs if is_pan(digits)]


def card_token(pan: str, key: bytes | None = None) -> str:
    """The card's keyed HMAC-SHA256 in lowercase base32 (52 characters). Not hex: a hex token
    holds a run of 13+ decimal digits often enough that the PAN scanner would flag about 1
    token in 550; base32 has only the digits 2-7, so its runs stay short."""
    digits = re.sub(r"\D", "", pan)
    mac = hmac.new(key or signing_key(KEY_ENV), digits.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().rstrip("=").lower()


def card_digits(pan: str) -> str:
    """The digits of a card number as printed (spaces, dashes); ValueError if not one."""
    digits = re.sub(r"\D", "", pan)
    if not is_pan(digits):
        raise ValueError("not a card number (13-19 digits of a card network passing Luhn)")
    return digits


def protect_card(pan: str, key: bytes | None = None) -> dict[str, str]:
    """What may be stored of a card: {"card_last4", "card_token"}; the PAN itself is not."""
    digits = card_digits(pan)
    return {"card_last4": digits[-4:], "card_token": card_token(digits, key)}


def redact(text: str) -> str:
    def mask(match: re.Match) -> str:
        digits = re.sub(r"[ -]", "", match.group())
        return f"****{digits[-4:]}" if is_pan(digits) else match.group()

    return _EMAIL.sub("<email>", _CANDIDATE.sub(mask, text))


def mask_pans_in_bytes(data: bytes | None) -> bytes | None:
    """`data` with every card number's digits but the last 4 replaced by `*`, byte for byte:
    the length does not change, so an Avro record stays decodable (its string lengths hold)
    and a dead letter keeps everything but the number."""
    if not data:
        return data
    text = data.decode("latin-1")

    def mask(match: re.Match) -> str:
        printed = match.group()
        if not is_pan(re.sub(r"[ -]", "", printed)):
            return printed
        keep = len(printed) - 4
        return re.sub(r"\d", "*", printed[:keep]) + printed[keep:]

    masked = _CANDIDATE.sub(mask, text)
    return data if masked == text else masked.encode("latin-1")


def redact_value(value: Any) -> Any:
    """`redact` applied to every string inside dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed call: logging reports it when emitting
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None


def install_redaction() -> None:
    """Redact every log record this process creates, whichever logger or handler takes it
    (a record factory, not a filter: filters on a logger miss its children's records)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacting", False):
        return

    def redacting(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _redact_record(record)
        return record

    redacting.redacting = True
    logging.setLogRecordFactory(redacting)
