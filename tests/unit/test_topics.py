from fraud_platform import topics
from fraud_platform.topics import ALL_TOPICS, DAY_MS, DLQ_TOPICS


def test_the_design_topics_with_their_keys_and_retention():
    expected = {
        "transactions-ingest": ("user_id", 7),
        "transactions-raw": ("user_id", 7),
        "transactions-enriched": ("user_id", 7),
        "transactions-late": ("user_id", 7),
        "quality-stream-windows": ("window_start_ms", 30),
        "fraud-labels": ("transaction_id", 28),
        "model-predictions": ("transaction_id", 28),
        "dlq-schema-errors": ("transaction_id", 28),
        "dlq-duplicates": ("transaction_id", 28),
        "dlq-incomplete": ("transaction_id", 28),
        "dlq-processing-errors": ("transaction_id", 28),
        "fraud-erasures": ("user_id", 28),
    }
    assert {t.name: (t.key, t.retention_days) for t in ALL_TOPICS} == expected
    assert {t.name for t in DLQ_TOPICS} == {n for n in expected if n.startswith("dlq-")}
    assert topics.FRAUD_LABELS.configs["retention.ms"] == str(28 * DAY_MS)


def test_no_topic_keeps_personal_data_past_the_erasure_deadline():
    """Kafka cannot delete one user's records: every topic that holds personal data (all but
    the monitoring windows) deletes them, segment included, within the 30 days."""
    personal = [t for t in ALL_TOPICS if t is not topics.QUALITY_STREAM_WINDOWS]
    for topic in personal:
        assert topic.longest_kept_days <= topics.ERASURE_DEADLINE_DAYS, topic.name
        assert int(topic.configs["segment.ms"]) == topics.SEGMENT_DAYS * DAY_MS


def test_partitions_scale_for_one_machine_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv("FRAUD_KAFKA_PARTITIONS", raising=False)
    assert topics.TRANSACTIONS_RAW.partitions == 3
    assert topics.FRAUD_LABELS.partitions == 1
    monkeypatch.setenv("FRAUD_KAFKA_PARTITIONS", "30")
    assert topics.TRANSACTIONS_RAW.partitions == 30
    assert topics.DLQ_DUPLICATES.partitions == 1
