"""Layer-1 conservation: every message is valid, dead-lettered with a reason, or a duplicate."""

import time
from collections import Counter

import pytest

from fraud_platform.contracts import DEAD_LETTER, TRANSACTION
from fraud_platform.ingestion.validator import Validator, ValidatorConfig
from fraud_platform.topics import DLQ_TOPICS

from .ingestion_support import TopicSet, bad_inputs, transaction

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(stack, settings):
    topic_set = TopicSet(settings.kafka_bootstrap)
    yield topic_set
    topic_set.delete()


def run_validator(settings, topics: TopicSet, idle_exit_s: float = 3.0) -> Validator:
    config = ValidatorConfig(
        bootstrap=settings.kafka_bootstrap,
        redis_url=settings.redis_url,
        topic_prefix=topics.prefix,
        group_id=f"{topics.prefix}validator",
        transactional_id=f"{topics.prefix}validator",
    )
    validator = Validator(config)
    validator.run(idle_exit_s=idle_exit_s)
    return validator


def test_every_message_is_accounted_for_with_its_reason_and_original_bytes(settings, topics):
    now = int(time.time() * 1000)
    good = [TRANSACTION.encode(transaction(i, now, topics.prefix)) for i in range(500)]
    bad = bad_inputs(now, topics.prefix)
    assert len({b.kind for b in bad}) >= 15
    sent = [(b"k", v) for v in good] + [(b"k", b.value) for b in bad]
    topics.produce("transactions-ingest", sent)

    validator = run_validator(settings, topics)

    raw = topics.drain("transactions-raw")
    dead = {t.name: topics.drain(t.name) for t in DLQ_TOPICS}
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
            assert envelope["original_value"] == by_offset[envelope["source_offset"]]
            assert envelope["detail"]
            reasons[envelope["reason"]] += 1
    assert reasons["duplicate"] == 1
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

    # Rewind the group as a crash before the commit would, then validate again.
    from confluent_kafka import Consumer, TopicPartition

    rewind = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{topics.prefix}validator"}
    )
    partitions = (
        rewind.list_topics(topics.name("transactions-ingest"))
        .topics[topics.name("transactions-ingest")]
        .partitions
    )
    rewind.commit(
        offsets=[TopicPartition(topics.name("transactions-ingest"), p, 0) for p in partitions],
        asynchronous=False,
    )
    rewind.close()
    second = run_validator(settings, topics)
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
