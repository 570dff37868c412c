"""Layer-1 validation rules: their configuration, and where a reject goes.

The checks themselves run natively (`native/src/rules.rs`, the `fraud_kernel` module): decoding
and checking a whole batch in one call is what lets the validator keep up with a bare Kafka
passthrough. This module holds the thresholds (FRAUD_VALIDATOR_* variables) and gives Python
callers one-message and batch entry points. Each rejection names the field and the value that
failed, so a DLQ reviewer sees the cause without decoding anything:

- dlq-schema-errors: empty_message, oversized, undecodable, wrong_contract, malformed_id
  (an id over 128 characters or with control/format characters), amount_not_finite,
  amount_out_of_range (not in (0, max]), unknown_currency, timestamp_in_future (more than
  the allowed skew ahead), timestamp_too_old (older than Kafka's retention), location_out_of_range,
  bad_card_last4 (anything but 4 digits), bad_card_token (anything but the 52 lowercase base32
  characters of `governance.pci.card_token`): neither value is ever echoed;
- dlq-incomplete: missing_field (a required field null or empty).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property

from fraud_kernel import Checker

from fraud_platform.contracts import CONTRACTS, TRANSACTION

SCHEMA_ERRORS = "dlq-schema-errors"
INCOMPLETE = "dlq-incomplete"
DUPLICATES = "dlq-duplicates"
PROCESSING_ERRORS = "dlq-processing-errors"

# ISO 4217 codes in circulation (the common set; extend with FRAUD_VALIDATOR_EXTRA_CURRENCIES).
CURRENCIES = frozenset(
    [
        "AED",
        "ARS",
        "AUD",
        "BGN",
        "BRL",
        "CAD",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CZK",
        "DKK",
        "EGP",
        "EUR",
        "GBP",
        "HKD",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "ISK",
        "JPY",
        "KES",
        "KRW",
        "KWD",
        "MAD",
        "MXN",
        "MYR",
        "NGN",
        "NOK",
        "NZD",
        "PEN",
        "PHP",
        "PKR",
        "PLN",
        "QAR",
        "RON",
        "RSD",
        "SAR",
        "SEK",
        "SGD",
        "THB",
        "TRY",
        "TWD",
        "UAH",
        "USD",
        "VND",
        "ZAR",
    ]
)


@dataclass(frozen=True)
class Rejection:
    dlq: str  # the catalog name of the dead-letter topic
    reason: str  # machine-readable code
    detail: str  # names the field and the value


@dataclass(frozen=True)
class Verdict:
    transaction_id: str | None  # None when the message did not decode
    user_id: str | None
    rejection: Rejection | None  # None: valid


# Per message from the kernel: (transaction_id, user_id, None | (dlq, reason, detail), the
# payload's event time in epoch ms).
RawVerdict = tuple[str | None, str | None, tuple[str, str, str] | None, int | None]


@dataclass(frozen=True)
class Rules:
    max_message_bytes: int = 16 * 1024
    max_amount: float = 1_000_000.0
    max_future_skew_ms: int = 5 * 60 * 1000
    max_age_ms: int = 7 * 24 * 3600 * 1000  # Kafka retention: older cannot be a live event
    currencies: frozenset[str] = CURRENCIES

    @classmethod
    def from_env(cls) -> Rules:
        defaults = cls()
        extra = os.environ.get("FRAUD_VALIDATOR_EXTRA_CURRENCIES", "").upper().split(",")
        return cls(
            max_message_bytes=int(
                os.environ.get("FRAUD_VALIDATOR_MAX_MESSAGE_BYTES", defaults.max_message_bytes)
            ),
            max_amount=float(os.environ.get("FRAUD_VALIDATOR_MAX_AMOUNT", defaults.max_amount)),
            max_future_skew_ms=int(
                float(os.environ.get("FRAUD_VALIDATOR_MAX_FUTURE_SKEW_S", 300)) * 1000
            ),
            max_age_ms=int(float(os.environ.get("FRAUD_VALIDATOR_MAX_AGE_S", 7 * 86400)) * 1000),
            currencies=CURRENCIES | {c.strip() for c in extra if c.strip()},
        )

    @cached_property
    def checker(self) -> Checker:
        return Checker(
            [(c.schema_id, c.name, c.version, json.dumps(c.schema)) for c in CONTRACTS.values()],
            TRANSACTION.name,
            self.max_message_bytes,
            self.max_amount,
            self.max_future_skew_ms,
            self.max_age_ms,
            sorted(self.currencies),
        )

    def check_batch(self, values: list[bytes | None], now_ms: int) -> list[RawVerdict]:
        """The validator's entry point: one native call per consumed batch."""
        return self.checker.check_batch(values, now_ms)

    def check(self, value: bytes | None, now_ms: int) -> Verdict:
        """Decode and check one framed message."""
        transaction_id, user_id, rejection, _ = self.check_batch([value], now_ms)[0]
        return Verdict(transaction_id, user_id, rejection and Rejection(*rejection))

    def check_record(self, record: dict, now_ms: int) -> Rejection | None:
        """Check a record as a producer would send it (encoded under the current contract)."""
        return self.check(TRANSACTION.encode(record), now_ms).rejection
