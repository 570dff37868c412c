"""Flink job 3 on the real stack: Layer-2 monitoring of transactions-enriched.

A lake holds last week's features (the baseline). Two event-time minutes of enriched
transactions go onto the enriched topic: a calm one, and one whose amounts are 20 times
larger with one message missing a feature. The monitoring job summarises each minute once
the watermark passes it; the summaries' figures are checked against the messages sent, and
the Dagster sensor's Layer-2 run passes the calm minute and alerts on the drifted one.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer

from fraud_platform.alerts import Alerter
from fraud_platform.contracts import ENRICHED_TRANSACTION
from fraud_platform.features.stream import enriched_feature_names
from fraud_platform.lake import TRANSACTION_FEATURES_PATH
from fraud_platform.streaming.control import FlinkJobs, deploy
from fraud_platform.streaming.jobs import MONITORING, Deployment, EventTime
from sensors.streaming import window_quality

from .ingestion_support import TopicSet
from .streaming_support import wait_for

pytestmark = pytest.mark.integration
MINUTE = 60_000
FEATURES = enriched_feature_names()


def features(rng: random.Random, scale: float = 1.0) -> dict:
    values = {name: rng.random() * 10 for name in FEATURES}
    values["merchant_category"] = rng.choice(["grocery", "travel"])
    values["amount"] = round(rng.lognormvariate(3, 0.8) * scale, 2)
    values["user_avg_amount_30d"] = rng.lognormvariate(3, 0.5)
    return values


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """A lake whose only content is yesterday's features: the monitoring job's baseline."""
    root = tmp_path_factory.mktemp("lake")
    rng = random.Random(1)
    frame = pd.DataFrame([features(rng) for _ in range(5_000)])
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    folder = root / TRANSACTION_FEATURES_PATH / f"date={yesterday}"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame), folder / "part-0.parquet")
    return str(root)


def message(i: int, ts: int, values: dict) -> dict:
    return {"transaction_id": f"t{i}", "user_id": f"u{i % 50}", "merchant_id": f"m{i % 9}",
            "timestamp": ts, "features": values, "feature_version": "v1"}  # fmt: skip


@pytest.fixture(scope="module")
def sent(stack, settings, lake):
    """Minute A calm (400), minute A+1 drifted (400, one without a feature), then one event
    per partition two minutes later so the watermark passes both; the job deployed on them."""
    topics = TopicSet(settings.kafka_bootstrap)
    start = (int(time.time() * 1000) // MINUTE - 4) * MINUTE
    rng = random.Random(2)
    calm = [message(i, start + i * 100, features(rng)) for i in range(400)]
    drifted = [message(1000 + i, start + MINUTE + i * 100, features(rng, 20.0))
               for i in range(400)]  # fmt: skip
    del drifted[7]["features"]["user_avg_amount_1h"]
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    enriched = topics.name("transactions-enriched")
    for record in calm + drifted:
        producer.produce(enriched, ENRICHED_TRANSACTION.encode(record), record["user_id"],
                         timestamp=record["timestamp"])  # fmt: skip
    later = start + 3 * MINUTE + 5_000
    for partition in range(len(producer.list_topics(enriched).topics[enriched].partitions)):
        record = message(9000 + partition, later, features(rng))
        producer.produce(enriched, ENRICHED_TRANSACTION.encode(record), partition=partition,
                         timestamp=later)  # fmt: skip
    assert producer.flush(30) == 0
    deployment = Deployment(
        topic_prefix=topics.prefix,
        lake_root=lake,
        checkpoint_interval="2s",
        event_time=EventTime(watermark_ms=2_000, lateness_ms=2_000),
    )
    job_id = deploy(settings, MONITORING, deployment)
    yield topics, start, calm, drifted
    FlinkJobs(settings).cancel(job_id)
    topics.delete()


def summaries(topics: TopicSet) -> dict[int, dict]:
    found = topics.drain("quality-stream-windows", idle_s=2)
    return {s["window_start_ms"]: s for s in (json.loads(m.value()) for m in found)}


def test_each_minute_is_summarised_once_from_all_its_messages(sent):
    topics, start, calm, _ = sent
    windows = wait_for(lambda: len(summaries(topics)) >= 2 and summaries(topics),
                       what="both minutes summarised")  # fmt: skip
    assert sorted(windows) == [start, start + MINUTE]  # once each; the open minute waits
    first, second = windows[start], windows[start + MINUTE]
    assert first["volume"] == 400 and second["volume"] == 400
    assert first["schema_changes"] == 0 and second["schema_changes"] == 1
    assert second["features_removed"] == ["user_avg_amount_1h"]
    assert second["missing_rate"]["user_avg_amount_1h"] == 1 / 400
    amounts = [r["features"]["amount"] for r in calm]
    assert first["amount_max"] == max(amounts)
    assert first["amount_mean"] == pytest.approx(sum(amounts) / len(amounts))
    lag = second["lag_ms"]["p50"]
    assert 0 < lag < 30 * MINUTE
    assert first["distributions"]["amount"]["rows"] == 400


def test_layer_two_passes_the_calm_minute_and_alerts_on_the_drifted_one(
    sent, settings, tmp_path, monkeypatch
):
    topics, *_ = sent
    wait_for(lambda: len(summaries(topics)) >= 2, what="both minutes summarised")
    # The minutes were sent minutes after their event time: lag is not what this checks.
    monkeypatch.setenv("FRAUD_QUALITY_MAX_LAG_P95_MS", str(60 * MINUTE))
    monkeypatch.setenv("FRAUD_QUALITY_MAX_LAG_P99_MS", str(60 * MINUTE))
    alerter = Alerter(tmp_path / "alerts.jsonl")
    windows = topics.name("quality-stream-windows")
    result = window_quality(settings.kafka_bootstrap, windows, None, alerter)
    calm, drifted = [o.metadata for o in result.asset_events]
    assert calm["passed"].value is True and drifted["passed"].value is False
    assert drifted["psi"].value > 0.25 and drifted["schema_changes"].value == 1
    (alert,) = alerter.recent()
    assert "psi:" in alert.detail and "amount" in alert.detail
    assert "schema_changes:" in alert.detail
    again = window_quality(settings.kafka_bootstrap, windows, result.cursor, alerter)
    assert again.asset_events == [] and again.cursor == result.cursor
