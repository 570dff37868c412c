"""Layer-1 conservation: every message is valid, dead-lettered with a reason, or a duplicate."""

import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fraud_platform.contracts import DEAD_LETTER, TRANSACTION
from fraud_platform.governance.pci import find_pans, mask_pans_in_bytes

from .ingestion_support import TopicSet, bad_inputs, run_validator, transaction

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
            # The original bytes, but for a card number's digits (masked, same length).
            assert envelope["original_value"] == mask_pans_in_bytes(
                by_offset[envelope["source_offset"]]
            )
            assert not find_pans((envelope["original_value"] or b"").decode("latin-1"))
            assert envelope["detail"]
            reasons[envelope["reason"]] += 1
    assert reasons["duplicate"] == 1
    masked = [v for v in by_offset.values() if mask_pans_in_bytes(v) != v]
    assert len(masked) == 2  # the records carrying a full card number: as last 4, as token
    assert reasons["bad_card_last4"] == reasons["bad_card_token"] == 1
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


def test_raw_records_carry_the_event_time_of_their_ingest_record(settings, topics):
    """The streaming jobs take event time and watermarks from the record timestamp."""
    from confluent_kafka import Producer

    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    sent = {}
    for i in range(20):
        record = transaction(i, now - i * 60_000, topics.prefix)
        sent[record["transaction_id"]] = record["timestamp"]
        producer.produce(topics.name("transactions-ingest"), TRANSACTION.encode(record),
                         record["user_id"], timestamp=record["timestamp"])  # fmt: skip
    assert producer.flush(30) == 0
    run_validator(settings, topics)
    raw, _ = topics.outputs()
    stamped = {TRANSACTION.decode(m.value())["transaction_id"]: m.timestamp()[1] for m in raw}
    assert stamped == sent
