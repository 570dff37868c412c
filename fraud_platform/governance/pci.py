"""Card data protection (PCI-DSS): no full card number (PAN) is ever stored.

- `protect_card` turns a PAN into what may be kept: its last 4 digits and a keyed token
  (HMAC-SHA256 with FRAUD_CARD_TOKEN_KEY), equal for equal cards so a card can still be
  followed across transactions, useless to anyone without the key.
- `find_pans` / `mask_pans_in_bytes` / `mask_pans`: what a card number is, defined once in
  the native kernel (`native/src/pan.rs`, `fraud_kernel.pan_spans`): 13 to 19 digits of a
  card network (2-6) passing the Luhn check, in one run (or the run less a first even digit,
  as an Avro length byte can read as one) or in a card's printed groups
  (4-4-4-4[-3], Amex 4-6-5); never the digits after a decimal point or inside a hash-sized hex
  token, so clean data holds none. The validator, the importer, the archiver and the Flink
  jobs mask with it (digits but the last 4 replaced by `*`, lengths kept, so an Avro record
  stays decodable); the scanner finds with it.
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

from fraud_kernel import mask_pans, pan_spans

from fraud_platform.governance.secrets import signing_key

KEY_ENV = "FRAUD_CARD_TOKEN_KEY"
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


def is_pan(digits: str) -> bool:
    """13-19 digits of a card network passing Luhn (the kernel's definition)."""
    return digits.isascii() and pan_spans(digits.encode()) == [(0, len(digits))]


def _as_bytes(data: str | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.encode()


def find_pans(data: str | bytes) -> list[str]:
    """The card numbers in `data` (text, or raw bytes such as an Avro message), digits only."""
    raw = _as_bytes(data)
    return [re.sub(rb"\D", b"", raw[a:b]).decode() for a, b in pan_spans(raw)]


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
    """Card numbers as `****1234` and e-mail addresses as `<email>`: for logs and the audit."""
    raw, pieces, at = text.encode(), [], 0
    for start, end in pan_spans(raw):
        digits = re.sub(rb"\D", b"", raw[start:end]).decode()
        pieces += [raw[at:start].decode(), f"****{digits[-4:]}"]
        at = end
    cleaned = "".join([*pieces, raw[at:].decode()]) if pieces else text
    return _EMAIL.sub("<email>", cleaned)


def mask_pans_in_bytes(data: bytes | None) -> bytes | None:
    """`data` with every card number's digits but the last 4 replaced by `*`, byte for byte:
    the length does not change, so an Avro record stays decodable (its string lengths hold)
    and a dead letter keeps everything but the number. `data` itself when it holds none."""
    if not data or not pan_spans(data):
        return data
    return mask_pans(data)


def mask_text(text: str | None) -> str | None:
    """`mask_pans_in_bytes` for a string (a dead letter's key or transaction id)."""
    return text if not text else mask_pans(text.encode()).decode()


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
