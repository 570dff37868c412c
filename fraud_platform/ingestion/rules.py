"""Layer-1 validation rules: what makes a transaction acceptable, and where a reject goes.

Every check names the field and the value that failed, so a DLQ reviewer sees the cause
without decoding anything. Thresholds are configuration (FRAUD_VALIDATOR_* variables).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from fraud_platform.contracts import TRANSACTION, ContractError, decode_any

SCHEMA_ERRORS = "dlq-schema-errors"
INCOMPLETE = "dlq-incomplete"
DUPLICATES = "dlq-duplicates"
PROCESSING_ERRORS = "dlq-processing-errors"

REQUIRED_FIELDS = ("transaction_id", "user_id", "merchant_id", "amount", "timestamp")

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
MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class Rejection:
    dlq: str  # the catalog name of the dead-letter topic
    reason: str  # machine-readable code
    detail: str  # names the field and the value


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

    def check(self, value: bytes | None, now_ms: int) -> tuple[dict | None, Rejection | None]:
        """Decode and validate one message: (record, None) when valid, else (record?, why)."""
        if value is None:
            return None, Rejection(
                SCHEMA_ERRORS, "empty_message", "message has no value (tombstone)"
            )
        if len(value) > self.max_message_bytes:
            return None, Rejection(
                SCHEMA_ERRORS,
                "oversized",
                f"message is {len(value)} bytes, more than the {self.max_message_bytes} allowed",
            )
        try:
            contract, record = decode_any(value)
        except ContractError as error:
            return None, Rejection(SCHEMA_ERRORS, "undecodable", str(error))
        if contract.name != TRANSACTION.name:
            return None, Rejection(
                SCHEMA_ERRORS,
                "wrong_contract",
                f"a {contract.name} message on the transactions topic",
            )
        return record, self.check_record(record, now_ms)

    def check_record(self, record: dict, now_ms: int) -> Rejection | None:
        # This runs for every message: the common case takes the fewest lookups.
        ids = (record.get("transaction_id"), record.get("user_id"), record.get("merchant_id"))
        amount, timestamp = record.get("amount"), record.get("timestamp")
        if not (all(ids) and amount is not None and timestamp is not None):
            missing = [f for f in REQUIRED_FIELDS if record.get(f) is None or record.get(f) == ""]
            return Rejection(
                INCOMPLETE, "missing_field", f"required field(s) missing: {', '.join(missing)}"
            )
        for name, value in zip(("transaction_id", "user_id", "merchant_id"), ids, strict=True):
            if len(value) > MAX_ID_LENGTH or not value.isprintable():
                return Rejection(
                    SCHEMA_ERRORS,
                    "malformed_id",
                    f"{name} is not a printable id of at most {MAX_ID_LENGTH} characters",
                )
        if not math.isfinite(amount):
            return Rejection(SCHEMA_ERRORS, "amount_not_finite", f"amount is {amount}")
        if not 0 < amount <= self.max_amount:
            return Rejection(
                SCHEMA_ERRORS,
                "amount_out_of_range",
                f"amount {amount} is not in (0, {self.max_amount:g}]",
            )
        currency = record.get("currency")
        if currency is not None and currency not in self.currencies:
            return Rejection(
                SCHEMA_ERRORS,
                "unknown_currency",
                f"currency {currency!r} is not an ISO 4217 code in use",
            )
        if timestamp > now_ms + self.max_future_skew_ms:
            return Rejection(
                SCHEMA_ERRORS,
                "timestamp_in_future",
                f"timestamp is {(timestamp - now_ms) / 1000:.0f}s ahead of the validator's clock",
            )
        if timestamp < now_ms - self.max_age_ms:
            return Rejection(
                SCHEMA_ERRORS,
                "timestamp_too_old",
                f"timestamp is {(now_ms - timestamp) / 86_400_000:.1f} days old, more than "
                f"{self.max_age_ms / 86_400_000:g} allowed",
            )
        location = record.get("location")
        if location is not None and not (
            -90 <= location["lat"] <= 90 and -180 <= location["lon"] <= 180
        ):
            return Rejection(
                SCHEMA_ERRORS,
                "location_out_of_range",
                f"location ({location['lat']}, {location['lon']}) is not on Earth",
            )
        last4 = record.get("card_last4")
        if last4 is not None and not (len(last4) == 4 and last4.isascii() and last4.isdigit()):
            # Never echo the value: it may be a full card number.
            return Rejection(
                SCHEMA_ERRORS,
                "bad_card_last4",
                f"card_last4 has {len(last4)} characters, not 4 digits",
            )
        return None
