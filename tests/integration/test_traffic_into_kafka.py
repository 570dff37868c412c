"""Live simulation and Kafka imports go through the front door and pass the validator."""

import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fraud_platform.contracts import FRAUD_LABEL, TRANSACTION
from fraud_platform.importing.importer import ImportError_, Mapping, import_to_kafka
from fraud_platform.simulation.live import run_live
from fraud_platform.simulation.reference import build_world

from ..unit.test_importer import HANDBOOK
from .ingestion_support import run_validator

pytestmark = pytest.mark.integration


def test_live_mode_sends_valid_payments_at_the_rate_and_due_labels(settings, resources, topics):
    producer = resources["kafka"].producer()
    began = time.monotonic()
    sent, labels = run_live(
        build_world(5, 500, 800),
        producer,
        rate=400,
        count=800,
        volume=3_000,
        topic_prefix=topics.prefix,
    )
    elapsed = time.monotonic() - began
    assert sent == 800 and elapsed >= 1.5  # paced, not dumped

    validator = run_validator(settings, topics)
    assert validator.metrics.totals() == {"transactions-raw": 800}
    raw = topics.drain("transactions-raw")
    records = [TRANSACTION.decode(m.value()) for m in raw]
    assert all(abs(r["timestamp"] / 1000 - time.time()) < 120 for r in records)
    assert len({r["transaction_id"] for r in records}) == 800
    label_messages = topics.drain("fraud-labels")
    assert len(label_messages) == labels
    now_ms = time.time() * 1000
    assert all(
        FRAUD_LABEL.decode(m.value())["investigation_complete_time"] <= now_ms
        for m in label_messages
    )


def test_kafka_import_refuses_old_history_unless_shifted(settings, resources, topics, tmp_path):
    table = pq.read_table(HANDBOOK).slice(0, 300)
    sample = tmp_path / "handbook_300.parquet"
    pq.write_table(table, sample)
    producer = resources["kafka"].producer()
    mapping = Mapping.load("handbook")
    week_ms = 7 * 86_400_000
    with pytest.raises(ImportError_, match=r"days old; the validator accepts at most 7 days"):
        import_to_kafka(producer, sample, mapping, week_ms, topic_prefix=topics.prefix)

    sent, labels = import_to_kafka(
        producer, sample, mapping, week_ms, shift_to_now=True, topic_prefix=topics.prefix
    )
    assert sent == 300
    assert labels == 0  # the newest is now: no 7-day investigation has completed yet
    validator = run_validator(settings, topics)
    assert validator.metrics.totals() == {"transactions-raw": 300}
    records = [TRANSACTION.decode(m.value()) for m in topics.drain("transactions-raw")]
    by_id = {r["transaction_id"]: r for r in records}
    first = table.slice(0, 1).to_pylist()[0]
    assert by_id[f"hb-{first['TRANSACTION_ID']}"]["amount"] == first["TX_AMOUNT"]
    assert by_id[f"hb-{first['TRANSACTION_ID']}"]["currency"] is None
    gaps = pc.subtract(table["TX_TIME_SECONDS"][-1], table["TX_TIME_SECONDS"][0]).as_py()
    span = max(r["timestamp"] for r in records) - min(r["timestamp"] for r in records)
    assert span == pa.scalar(gaps).as_py() * 1000  # relative times kept
