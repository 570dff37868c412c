"""Streaming jobs run from Dagster: deploy, observe, stop with a savepoint, restart from it.

Across the stop and the restart the enrichment job's exactly-once output stays whole: each
transaction sent before and after comes out once (read committed), none lost, none twice.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from assets.streaming import streaming_deploy, streaming_restart, streaming_stop
from fraud_platform.contracts import ENRICHED_TRANSACTION, TRANSACTION
from fraud_platform.streaming.control import FlinkJobs, observe
from fraud_platform.streaming.jobs import ENRICHMENT, Deployment

from .ingestion_support import TopicSet, transaction
from .streaming_support import wait_for

pytestmark = pytest.mark.integration


def run(job, topics: TopicSet):
    config = {"job": "enrichment", "topic_prefix": topics.prefix, "key_prefix": topics.prefix}
    op = {streaming_deploy: "deploy_streaming_job", streaming_stop: "stop_streaming_job",
          streaming_restart: "restart_streaming_job"}[job]  # fmt: skip
    result = job.execute_in_process(run_config={"ops": {op: {"config": config}}})
    assert result.success
    return result.output_for_node(op)


def send(settings, topics: TopicSet, first: int, count: int, run_id: str) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    now = int(time.time() * 1000)
    for i in range(first, first + count):
        record = transaction(i, now, run_id)
        producer.produce(topics.name("transactions-raw"), TRANSACTION.encode(record),
                         record["user_id"], timestamp=record["timestamp"])  # fmt: skip
    assert producer.flush(30) == 0


def enriched_ids(topics: TopicSet) -> list[str]:
    messages = topics.drain("transactions-enriched", idle_s=3)
    return [ENRICHED_TRANSACTION.decode(m.value())["transaction_id"] for m in messages]


def written_ids(topics: TopicSet) -> set[str]:
    """Enriched ids the job has written so far, committed or not: what it has processed."""
    consumer = Consumer(
        {
            "bootstrap.servers": topics.bootstrap,
            "group.id": f"peek-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_uncommitted",
        }
    )
    consumer.subscribe([topics.name("transactions-enriched")])
    ids: set[str] = set()
    while batch := consumer.consume(5000, timeout=2):
        decoded = (ENRICHED_TRANSACTION.decode(m.value()) for m in batch if m.error() is None)
        ids.update(record["transaction_id"] for record in decoded)
    consumer.close()
    return ids


def processed(topics: TopicSet, count: int):
    """Waits until the job has processed `count` transactions in all, so a stop's savepoint
    holds them (stop-with-savepoint does not drain the source)."""
    return wait_for(lambda: len(written_ids(topics)) >= count, 120, f"{count} processed")


def test_deploy_observe_stop_with_savepoint_and_restart_from_it(stack, settings, unique):
    topics = TopicSet(settings.kafka_bootstrap)
    deployment = Deployment(topic_prefix=topics.prefix, key_prefix=topics.prefix)
    flink = FlinkJobs(settings)
    try:
        run(streaming_deploy, topics)
        metadata, alert = observe(flink, settings, ENRICHMENT, deployment)
        assert alert is None and metadata["state"] == "RUNNING" and metadata["restarts"] == 0

        send(settings, topics, 0, 200, unique)
        processed(topics, 200)
        savepoint = run(streaming_stop, topics)
        assert savepoint.startswith("file:") and "savepoint-" in savepoint
        metadata, alert = observe(flink, settings, ENRICHMENT, deployment)
        assert metadata == {"state": "MISSING"} and "not running" in alert.title
        assert sorted(enriched_ids(topics)) == sorted(f"{unique}-txn-{i}" for i in range(200))

        send(settings, topics, 200, 200, unique)  # while the job is down
        assert run(streaming_restart, topics) == savepoint
        processed(topics, 400)
        run(streaming_stop, topics)
        ids = enriched_ids(topics)
        assert len(ids) == len(set(ids)) == 400  # none twice, none lost
    finally:
        for job in flink.find(f"fraud-enrichment [{topics.prefix}]"):
            flink.cancel(job["jid"])
        topics.delete()
