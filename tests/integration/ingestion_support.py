"""Builders of good and bad ingest messages, and readers of what came out."""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from fastavro import parse_schema, schemaless_writer

from fraud_platform.contracts import FRAUD_LABEL, TRANSACTION
from fraud_platform.governance.pci import card_token
from fraud_platform.ingestion.rules import DUPLICATES, INCOMPLETE, SCHEMA_ERRORS
from fraud_platform.ingestion.validator import Validator, ValidatorConfig
from fraud_platform.topics import ALL_TOPICS, DLQ_TOPICS, ensure_topics, topic_name

PAN = "4111111111111111"  # a Luhn-valid test number

DAY_MS = 86_400_000
# Tokens of some test cards, made as a producer makes them (protect_card).
CARD_TOKENS = [card_token(f"4{i:015d}", b"ingestion tests") for i in range(13)]


def transaction(i: int, now_ms: int, run: str, **overrides) -> dict:
    record = {
        "transaction_id": f"{run}-txn-{i}",
        "user_id": f"user_{i % 97}",
        "merchant_id": f"merch_{i % 31}",
        "amount": 5.0 + (i % 400) * 1.25,
        "currency": "EUR",
        "timestamp": now_ms - (i % 1000),
        "location": {"lat": 48.85, "lon": 2.35},
        "country": "FR",
        "device": "mobile",
        "device_id": f"dev_{i % 97}",
        "channel": "online",
        "card_last4": f"{i % 10000:04d}",
        "card_token": CARD_TOKENS[i % len(CARD_TOKENS)],
        "declined": i % 50 == 0,
    }
    record.update(overrides)
    return record


def _rogue_encode(record: dict) -> bytes:
    """Encoded with a schema where amount is a string, but framed with the transaction id."""
    schema = dict(TRANSACTION.schema)
    schema["fields"] = [
        {**f, "type": ["null", "string"]} if f["name"] == "amount" else f
        for f in TRANSACTION.schema["fields"]
    ]
    for f in schema["fields"]:
        if f["name"] == "timestamp":
            f["type"] = ["null", "long"]
    import io

    out = io.BytesIO()
    out.write(struct.pack(">bI", 0, TRANSACTION.schema_id))
    schemaless_writer(out, parse_schema(schema), record)
    return out.getvalue()


@dataclass(frozen=True)
class BadInput:
    kind: str
    value: bytes | None
    dlq: str


def bad_inputs(now_ms: int, run: str) -> list[BadInput]:
    """At least 15 kinds of bad input, each with the dead-letter topic it must reach."""
    t = lambda i, **kw: TRANSACTION.encode(transaction(i, now_ms, run, **kw))  # noqa: E731
    valid = t(900_001)
    label = FRAUD_LABEL.encode(
        {
            "transaction_id": "x",
            "is_fraud": True,
            "transaction_time": now_ms,
            "investigation_complete_time": now_ms,
        }
    )
    kinds = [
        ("not_avro", b"this is not avro at all", SCHEMA_ERRORS),
        ("empty_bytes", b"", SCHEMA_ERRORS),
        ("tombstone", None, SCHEMA_ERRORS),
        ("truncated", valid[: len(valid) // 2], SCHEMA_ERRORS),
        ("trailing_garbage", valid + b"\x00\x01\x02", SCHEMA_ERRORS),
        ("bad_magic", b"\x07" + valid[1:], SCHEMA_ERRORS),
        ("unknown_schema_id", struct.pack(">bI", 0, 999) + valid[5:], SCHEMA_ERRORS),
        ("wrong_contract", label, SCHEMA_ERRORS),
        (
            "wrong_types",
            _rogue_encode({**transaction(900_002, now_ms, run), "amount": "12.50"}),
            SCHEMA_ERRORS,
        ),
        ("negative_amount", t(900_003, amount=-20.0), SCHEMA_ERRORS),
        ("absurd_amount", t(900_004, amount=1e12), SCHEMA_ERRORS),
        ("nan_amount", t(900_005, amount=float("nan")), SCHEMA_ERRORS),
        ("unknown_currency", t(900_006, currency="XYZ"), SCHEMA_ERRORS),
        ("far_future", t(900_007, timestamp=now_ms + 30 * DAY_MS), SCHEMA_ERRORS),
        ("far_past", t(900_008, timestamp=now_ms - 3650 * DAY_MS), SCHEMA_ERRORS),
        ("location_off_earth", t(900_009, location={"lat": 123.0, "lon": 2.0}), SCHEMA_ERRORS),
        ("full_card_number", t(900_010, card_last4="4111111111111111"), SCHEMA_ERRORS),
        ("card_number_as_token", t(900_017, card_token="4111111111111111"), SCHEMA_ERRORS),
        ("control_chars_in_id", t(900_011, user_id="user\x00\x07"), SCHEMA_ERRORS),
        # A card number in any string field, the ids included (issue 21): dead-lettered,
        # the number masked in the value, the key and the envelope's transaction id.
        ("card_number_in_merchant", t(900_020, merchant_id=f"merchant:{PAN}"), SCHEMA_ERRORS),
        ("card_number_in_user", t(900_021, user_id=PAN), SCHEMA_ERRORS),
        ("card_number_in_device", t(900_022, device=f"pos {PAN}"), SCHEMA_ERRORS),
        ("card_number_in_channel", t(900_023, channel="4111-1111-1111-1111"), SCHEMA_ERRORS),
        ("card_number_in_country", t(900_024, country=PAN), SCHEMA_ERRORS),
        ("card_number_in_id", t(900_025, transaction_id=f"tx-{PAN}"), SCHEMA_ERRORS),
        # 24 characters: Avro's length byte for it is "0", glued to the number's first digit.
        ("card_number_after_a_digit_length", t(900_026, device=f"{PAN}-store-1"), SCHEMA_ERRORS),
        # Control and invisible characters (one rule: Python's str.isprintable).
        ("arabic_letter_mark", t(900_030, merchant_id="m\u061c1"), SCHEMA_ERRORS),
        ("tag_characters", t(900_031, device="mobile\U000e0041"), SCHEMA_ERRORS),
        ("escape", t(900_032, country="F\x1bR"), SCHEMA_ERRORS),
        ("nul", t(900_033, channel="online\x00"), SCHEMA_ERRORS),
        ("right_to_left_override", t(900_034, device="\u202emobile"), SCHEMA_ERRORS),
        ("oversized", t(900_012, device_id="d" * 40_000), SCHEMA_ERRORS),
        ("missing_user_id", t(900_013, user_id=None), INCOMPLETE),
        ("missing_amount", t(900_014, amount=None), INCOMPLETE),
        ("empty_transaction_id", t(900_015, transaction_id=""), INCOMPLETE),
        ("missing_timestamp", t(900_016, timestamp=None), INCOMPLETE),
        ("duplicate", TRANSACTION.encode(transaction(0, now_ms, run)), DUPLICATES),
    ]
    return [BadInput(kind, value, dlq) for kind, value, dlq in kinds]


class TopicSet:
    """The catalog's topics under a unique prefix, deleted afterwards."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = f"t{uuid.uuid4().hex[:8]}-"
        ensure_topics(bootstrap, prefix=self.prefix)

    def name(self, catalog_name: str) -> str:
        return topic_name(catalog_name, self.prefix)

    def produce(self, catalog_name: str, values: list[tuple[bytes | None, bytes | None]]) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20})
        for i, (key, value) in enumerate(values):
            while True:
                try:
                    producer.produce(self.name(catalog_name), key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.1)
            if i % 5000 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0

    def drain(self, catalog_name: str, idle_s: float = 3.0) -> list:
        return self.drain_all([catalog_name], idle_s)[catalog_name]

    def drain_all(self, catalog_names: list[str], idle_s: float = 3.0) -> dict[str, list]:
        """Every committed message of the topics, read until quiet for `idle_s` seconds."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"drain-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        names = {self.name(n): n for n in catalog_names}
        consumer.subscribe(list(names))
        found: dict[str, list] = {n: [] for n in catalog_names}
        last, started = time.monotonic(), time.monotonic()
        while time.monotonic() - last < idle_s and time.monotonic() - started < 120:
            for message in consumer.consume(5000, timeout=0.5):
                if message.error() is None:
                    found[names[message.topic()]].append(message)
                    last = time.monotonic()
        consumer.close()
        return found

    def outputs(self) -> tuple[list, dict[str, list]]:
        """(transactions-raw messages, dead-letter messages by DLQ topic)."""
        found = self.drain_all(["transactions-raw", *(t.name for t in DLQ_TOPICS)])
        return found.pop("transactions-raw"), found

    def delete(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.delete_topics([self.name(t.name) for t in ALL_TOPICS])


def run_validator(
    settings,
    topics: TopicSet,
    idle_exit_s: float = 3.0,
    group: str = "validator",
    lake_root: str = "",
) -> Validator:
    config = ValidatorConfig(
        bootstrap=settings.kafka_bootstrap,
        redis_url=settings.redis_url,
        topic_prefix=topics.prefix,
        group_id=f"{topics.prefix}{group}",
        transactional_id=f"{topics.prefix}{group}",
        lake_root=lake_root,
    )
    validator = Validator(config)
    validator.run(idle_exit_s=idle_exit_s)
    return validator
