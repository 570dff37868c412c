from fraud_platform import topics
from fraud_platform.topics import ALL_TOPICS, DAY_MS, DLQ_TOPICS


def test_the_design_topics_with_their_keys_and_retention():
    expected = {
        "transactions-ingest": ("user_id", 7),
        "transactions-raw": ("user_id", 7),
        "transactions-enriched": ("user_id", 7),
        "transactions-late": ("user_id", 7),
        "quality-stream-windows": ("window_start_ms", 30),
        "fraud-labels": ("transaction_id", 90),
        "model-predictions": ("transaction_id", 30),
        "dlq-schema-errors": ("transaction_id", 30),
        "dlq-duplicates": ("transaction_id", 30),
        "dlq-incomplete": ("transaction_id", 30),
        "dlq-processing-errors": ("transaction_id", 30),
    }
    assert {t.name: (t.key, t.retention_days) for t in ALL_TOPICS} == expected
    assert {t.name for t in DLQ_TOPICS} == {n for n in expected if n.startswith("dlq-")}
    assert topics.FRAUD_LABELS.configs["retention.ms"] == str(90 * DAY_MS)


def test_partitions_scale_for_one_machine_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv("FRAUD_KAFKA_PARTITIONS", raising=False)
    assert topics.TRANSACTIONS_RAW.partitions == 3
    assert topics.FRAUD_LABELS.partitions == 1
    monkeypatch.setenv("FRAUD_KAFKA_PARTITIONS", "30")
    assert topics.TRANSACTIONS_RAW.partitions == 30
    assert topics.DLQ_DUPLICATES.partitions == 1
