"""Card data protection (PCI-DSS): no full card number (PAN) is ever stored.

- `protect_card` turns a PAN into what may be kept: its last 4 digits and a keyed token
  (HMAC-SHA256 with FRAUD_CARD_TOKEN_KEY), equal for equal cards so a card can still be
  followed across transactions, useless to anyone without the key.
- `find_pans` finds anything that looks like a card number: 13 to 19 digits, optionally in
  groups split by spaces or dashes, that pass the Luhn check (which most digit runs fail).
- `redact` / `redact_value` mask PANs (keeping the last 4) and e-mail addresses in text and in
  nested values, for logs and the audit log; `install_redaction` does it for every log record
  a process creates (the platform installs it on import).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any

from fraud_platform.governance.secrets import signing_key

KEY_ENV = "FRAUD_CARD_TOKEN_KEY"
_CANDIDATE = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def find_pans(text: str) -> list[str]:
    """The card numbers in `text`, digits only."""
    found = []
    for match in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found.append(digits)
    return found


def card_token(pan: str, key: bytes | None = None) -> str:
    digits = re.sub(r"\D", "", pan)
    return hmac.new(key or signing_key(KEY_ENV), digits.encode(), hashlib.sha256).hexdigest()


def protect_card(pan: str, key: bytes | None = None) -> dict[str, str]:
    """What may be stored of a card: {"card_last4", "card_token"}; the PAN itself is not."""
    digits = re.sub(r"\D", "", pan)
    if not (13 <= len(digits) <= 19 and luhn_valid(digits)):
        raise ValueError("not a card number (13-19 digits passing the Luhn check)")
    return {"card_last4": digits[-4:], "card_token": card_token(digits, key)}


def redact(text: str) -> str:
    def mask(match: re.Match) -> str:
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return f"****{digits[-4:]}"
        return match.group()

    return _EMAIL.sub("<email>", _CANDIDATE.sub(mask, text))


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
