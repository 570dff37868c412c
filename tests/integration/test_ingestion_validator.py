"""Layer-1 conservation: every message is valid, dead-lettered with a reason, or a duplicate."""

import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fraud_platform.contracts import DEAD_LETTER, TRANSACTION
from fraud_platform.governance.pci import find_pans, mask_pans_in_bytes

from .ingestion_support import PAN, TopicSet, bad_inputs, run_validator, transaction

pytestmark = pytest.mark.integration


def test_every_message_is_accounted_for_with_its_reason_and_original_bytes(settings, topics):
    now = int(time.time() * 1000)
    good = [TRANSACTION.encode(transaction(i, now, topics.prefix)) for i in range(500)]
    bad = bad_inputs(now, topics.prefix)
    assert len({b.kind for b in bad}) >= 15
    sent = [(b"k", v) for v in good] + [(b"k", b.value) for b in bad]
    topics.produce("transactions-ingest", sent)

    validator = run_validator(settings, topics)

    raw, dead = topics.outputs()
    n_dead = sum(len(v) for v in dead.values())
    assert len(sent) == len(raw) + n_dead  # N = valid + sum(DLQ by reason, duplicates included)
    assert len(raw) == len(good)
    assert sorted(m.value() for m in raw) == sorted(good)
    assert len({TRANSACTION.decode(m.value())["transaction_id"] for m in raw}) == len(raw)

    expected = Counter(b.dlq for b in bad)
    assert {name: len(msgs) for name, msgs in dead.items() if msgs} == dict(expected)

    by_offset = {offset: value for offset, (_, value) in enumerate(sent)}
    reasons = Counter()
    for messages in dead.values():
        for message in messages:
            envelope = DEAD_LETTER.decode(message.value())
            assert envelope["source_topic"] == topics.name("transactions-ingest")
            # The original bytes, but for a card number's digits (masked, same length), and
            # the first 16 KB of an original over the size rule.
            original = mask_pans_in_bytes(by_offset[envelope["source_offset"]])
            assert envelope["original_value"] == (original and original[: 16 * 1024])
            for part in (envelope["original_value"], envelope["original_key"], message.key()):
                assert not find_pans(part or b"")
            assert not find_pans(envelope["transaction_id"] or "")
            assert envelope["detail"] and PAN not in envelope["detail"]
            reasons[envelope["reason"]] += 1
    assert reasons["duplicate"] == 1
    masked = [v for v in by_offset.values() if mask_pans_in_bytes(v) != v]
    assert len(masked) == 9  # the records carrying a full card number, in any field
    assert reasons["bad_card_last4"] == reasons["bad_card_token"] == 1
    assert reasons["card_number_in_field"] == 7
    assert reasons["unprintable_text"] == 4 and reasons["malformed_id"] == 2
    assert not any(find_pans(m.value()) for m in raw)
    assert reasons["missing_field"] == 4
    assert {"undecodable", "oversized", "amount_out_of_range", "unknown_currency"} <= set(reasons)
    assert {"timestamp_in_future", "timestamp_too_old", "wrong_contract"} <= set(reasons)

    totals = validator.metrics.totals()
    assert totals["transactions-raw"] == len(good)
    assert sum(v for k, v in totals.items() if k.startswith("dlq-")) == n_dead
    assert validator.metrics.alerting  # 24 of 524 dead-lettered: far above 0.1%


def test_a_replayed_batch_is_not_mistaken_for_duplicates(settings, topics):
    """Dedup keys hold the first occurrence's position, so reprocessing after a crash
    (same partition and offset) passes the record again instead of dead-lettering it."""
    now = int(time.time() * 1000)
    topics.produce(
        "transactions-ingest",
        [(b"k", TRANSACTION.encode(transaction(i, now, topics.prefix))) for i in range(50)],
    )
    first = run_validator(settings, topics)
    assert first.metrics.totals() == {"transactions-raw": 50}

    # A crash before the commit replays the batch from the same positions: a second group
    # reads them again while the dedup keys of the first run are still in Redis.
    second = run_validator(settings, topics, group="replay")
    assert second.metrics.totals() == {"transactions-raw": 50}


def test_metrics_endpoint_serves_prometheus_text(free_ports):
    import httpx

    from fraud_platform.ingestion.metrics import IngestionMetrics

    metrics = IngestionMetrics()
    metrics.record_batch(
        Counter({("transactions-raw", "valid"): 999, ("dlq-incomplete", "missing_field"): 1})
    )
    port = free_ports()
    server = metrics.serve(port)
    try:
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.shutdown()
    assert 'fraud_ingestion_messages_total{topic="transactions-raw",reason="valid"} 999' in body
    assert "fraud_ingestion_dlq_rate 0.001000" in body
    assert "fraud_ingestion_dlq_alert 0" in body  # exactly 0.1% is not above it


@hypothesis_settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.builds(
                lambda i, amount: TRANSACTION.encode(
                    transaction(i, int(time.time() * 1000), "prop", amount=amount)
                ),
                st.integers(0, 50),
                st.floats(allow_nan=True, allow_infinity=True),
            ),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_random_input_through_the_real_validator_is_conserved(settings, stack, values):
    """Property: whatever arrives, raw + every DLQ together hold exactly as many messages."""
    topics = TopicSet(settings.kafka_bootstrap)
    try:
        topics.produce("transactions-ingest", [(None, v) for v in values])
        run_validator(settings, topics, idle_exit_s=2)
        raw, dead = topics.outputs()
        assert len(raw) + sum(len(m) for m in dead.values()) == len(values)
    finally:
        topics.delete()


def test_raw_records_carry_the_event_time_of_their_payload(settings, topics):
    """The streaming jobs take event time and watermarks from the raw record's timestamp: it
    is the payload's event time, whatever the producer stamped its record with (1 ms after
    the epoch would send the transaction to the late topic and out of the online windows)."""
    from confluent_kafka import Producer

    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    sent = {}
    for i in range(20):
        record = transaction(i, now - i * 60_000, topics.prefix)
        sent[record["transaction_id"]] = record["timestamp"]
        stamp = record["timestamp"] if i % 2 else 1  # a producer's clock, or a forged one
        topic = topics.name("transactions-ingest")
        producer.produce(topic, TRANSACTION.encode(record), record["user_id"], timestamp=stamp)
    assert producer.flush(30) == 0
    run_validator(settings, topics)
    raw, _ = topics.outputs()
    stamped = {TRANSACTION.decode(m.value())["transaction_id"]: m.timestamp()[1] for m in raw}
    assert stamped == sent


def _encoded_at(size: int, record: dict) -> bytes:
    """The record encoded to exactly `size` bytes by padding its device id."""
    pad = size - len(TRANSACTION.encode(record | {"device_id": ""}))
    value = TRANSACTION.encode(record | {"device_id": "d" * pad})
    while len(value) != size:  # the string's length prefix grew with the padding
        pad -= len(value) - size
        value = TRANSACTION.encode(record | {"device_id": "d" * pad})
    return value


def test_a_message_near_the_brokers_limit_is_kept_and_the_validator_goes_on(
    settings, topics, tmp_path
):
    """999,950 bytes: its envelope would pass the producer's 1,000,000-byte limit, which
    used to stop the validator. The envelope now holds its first 16 KB and its hash; the lake
    holds it whole; the message after it is validated as usual."""
    import hashlib

    now = int(time.time() * 1000)
    huge = _encoded_at(999_950, transaction(1, now, topics.prefix))
    after = TRANSACTION.encode(transaction(2, now, topics.prefix))
    topics.produce("transactions-ingest", [(b"k", huge), (b"k", after)])

    run_validator(settings, topics, lake_root=str(tmp_path / "lake"))

    raw, dead = topics.outputs()
    assert [m.value() for m in raw] == [after]
    [letter] = [DEAD_LETTER.decode(m.value()) for m in dead["dlq-schema-errors"]]
    digest = hashlib.sha256(huge).hexdigest()
    assert letter["reason"] == "oversized" and letter["original_value"] == huge[: 16 * 1024]
    assert f"sha256 {digest}" in letter["detail"]
    kept = tmp_path / "lake" / "dead_letters" / "originals" / f"{digest}.bin"
    assert kept.read_bytes() == huge
