"""The Flink jobs on the real stack compute what the batch computes.

Two simulated days (over 10,000 transactions of a 400-user world) go onto transactions-raw
as live traffic would, and into a lake as `simulate` writes history; fraud labels on the
first day's transactions, completed hours later, go onto fraud-labels first. The enrichment
job (label delay one day, so the second day's transactions count the first day's frauds) is
compared feature by feature, every catalog feature, with the batch (Spark, the catalog's
generated SQL over the lake's processed rows and the same labels); the aggregates job's Redis
hashes for a sample of users and merchants are compared with the batch recomputed at the same
cut-off. Then events inside the allowed lateness update the windows and one beyond it lands
in the late topic.

transactions-raw has one partition here, so a merchant's transactions arrive in event order
(keyed by card, they cross partitions) and its windows at arrival equal the batch's exactly.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from confluent_kafka import Producer

from fraud_platform.batch.processing import process_transactions
from fraud_platform.contracts import DEAD_LETTER, FRAUD_LABEL, TRANSACTION
from fraud_platform.features.stream import enriched_feature_names
from fraud_platform.governance import erasure_flink
from fraud_platform.streaming.control import FlinkJobs, deploy, runs
from fraud_platform.streaming.jobs import AGGREGATES, ENRICHMENT, Deployment

from .ingestion_support import TopicSet
from .streaming_support import (
    aggregates_against_batch,
    batch_features,
    enriched,
    produce_raw,
    same,
    simulated_days,
    stored,
    wait_for,
)

pytestmark = pytest.mark.integration
MINUTE = 60_000
HOUR = 60 * MINUTE
LABEL_DELAY_DAYS = 1


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """Two simulated days before today: the transactions (time order) and their lake."""
    return simulated_days(str(tmp_path_factory.mktemp("lake")), seed=7)


@pytest.fixture(scope="module")
def frauds(traffic) -> list[dict]:
    """Fraud verdicts on every 25th transaction of the first day, 2 to 14 hours later (some
    before the second day's transactions, some after), naming the card and the merchant."""
    records, _, dates = traffic
    first_day = [r for r in records if day_of(r["timestamp"]) == dates[0]]
    labels = []
    for i, r in enumerate(first_day[::25]):
        label = {"transaction_id": r["transaction_id"], "is_fraud": True}
        label["transaction_time"] = r["timestamp"]
        label["investigation_complete_time"] = r["timestamp"] + (2 + i % 13) * HOUR
        labels.append({**label, "user_id": r["user_id"], "merchant_id": r["merchant_id"]})
    return labels


def day_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).date().isoformat()


@pytest.fixture(scope="module")
def streaming(stack, settings, traffic, frauds):
    """Both jobs deployed on this module's own topics (transactions-raw in one partition),
    Redis keys and lake."""
    records, lake, _ = traffic
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FRAUD_KAFKA_PARTITIONS", "1")
        topics = TopicSet(settings.kafka_bootstrap)
    deployment = Deployment(
        topic_prefix=topics.prefix,
        key_prefix=f"{topics.prefix}:",
        lake_root=lake.root,
        checkpoint_interval="2s",
        label_delay_days=LABEL_DELAY_DAYS,
    )
    # The labels are known before the transactions arrive: the enrichment reads them first.
    topics.produce("fraud-labels", [(None, FRAUD_LABEL.encode(label)) for label in frauds])
    enrichment = deploy(settings, ENRICHMENT, deployment)
    flink = FlinkJobs(settings)
    wait_for(lambda: flink.metric(enrichment, "fraud_labels") == len(frauds), 120, "the labels")
    produce_raw(settings, topics, records)
    deploy(settings, AGGREGATES, deployment)
    yield topics, deployment
    flink = FlinkJobs(settings)
    for job in (ENRICHMENT, AGGREGATES):  # by name: the erasure test restarts them
        for found in flink.find(deployment.instance_name(job)):
            flink.cancel(found["jid"])
        job_ids, savepoint = runs(settings, job, deployment)  # simulated users' state
        for path in [settings.home / "flink" / "checkpoints" / j for j in job_ids]:
            shutil.rmtree(path, ignore_errors=True)
        if savepoint:
            shutil.rmtree(savepoint.removeprefix("file:"), ignore_errors=True)
    client = redis.Redis.from_url(settings.redis_url)
    for key in client.scan_iter(f"{deployment.key_prefix}*", count=1000):
        client.delete(key)
    topics.delete()


@pytest.fixture(scope="module")
def batch(spark, traffic):
    """The batch's processed rows of the lake, as pandas."""
    _, lake, dates = traffic
    processed, _ = process_transactions(spark, lake, dates)
    return processed


def test_enriched_features_equal_the_batch_features(streaming, traffic, frauds, spark, batch):
    topics, _ = streaming
    records, _, _ = traffic
    stream = enriched(topics, len(records))
    assert len(records) >= 10_000 and len(stream) == len(records)
    labels = [(f["transaction_id"], True, f["investigation_complete_time"]) for f in frauds]
    expected = batch_features(spark, batch, labels=labels, label_delay_days=LABEL_DELAY_DAYS)
    names = enriched_feature_names()
    mismatches = [
        (tid, name, message["features"].get(name), expected[tid][name])
        for tid, message in stream.items()
        for name in names
        if not same(message["features"].get(name), expected[tid][name])
    ]
    assert mismatches == [], f"{len(mismatches)} mismatches, e.g. {mismatches[:5]}"
    # The features are not trivially empty: the windows saw history, and frauds.
    assert sum(m["features"]["user_transaction_count_24h"] > 0 for m in stream.values()) > 5_000
    assert sum(m["features"]["merchant_fraud_count_24h"] > 0 for m in stream.values()) > 500


def test_redis_aggregates_equal_the_batch_at_their_cut_off(
    streaming, traffic, spark, batch, settings
):
    _, deployment = streaming
    records, _, _ = traffic
    compared, mismatches = aggregates_against_batch(settings, deployment, records, spark, batch)
    assert compared > 1_000 and mismatches == [], mismatches[:5]


def test_late_events_inside_the_bound_count_and_beyond_it_go_to_the_late_topic(streaming, settings):
    topics, deployment = streaming
    client = redis.Redis.from_url(settings.redis_url)
    key = deployment.key_prefix + "user:late-user:agg:1h"
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    now = int(time.time() * 1000)

    def send(transaction_id: str, ts_ms: int) -> None:
        record = {
            "transaction_id": transaction_id, "user_id": "late-user",
            "merchant_id": "late-merchant", "amount": 10.0, "currency": "EUR",
            "timestamp": ts_ms, "location": {"lat": 48.85, "lon": 2.35}, "country": "FR",
            "device": "mobile", "device_id": "d1", "channel": "online", "card_last4": "1234",
            "declined": False,
        }  # fmt: skip
        producer.produce(topics.name("transactions-raw"), key=b"late-user",
                         value=TRANSACTION.encode(record), timestamp=ts_ms)  # fmt: skip
        assert producer.flush(10) == 0

    count = lambda: stored(client, key).get("user_transaction_count_1h")  # noqa: E731
    flink = FlinkJobs(settings)
    (job, *_) = flink.find(deployment.instance_name(AGGREGATES))
    send("late-now", now)
    wait_for(lambda: count() == 1, what="the first event in Redis")
    # The watermark moves to now - 5 min once the other partitions, quiet since the
    # backlog, count as idle.
    watermark = now - deployment.event_time.watermark_ms - 1  # as Flink bounds it
    wait_for(lambda: (flink.input_watermark(job["jid"], "user-windows") or 0) >= watermark,
             150, "the watermark to pass now - 5 min")  # fmt: skip
    send("late-inside", now - 3 * MINUTE)  # after the watermark - lateness (now - 10 min)
    send("late-beyond", now - 20 * MINUTE)  # before it
    wait_for(lambda: count() == 2, what="the late event inside the bound to count")
    late = topics.drain("transactions-late", idle_s=5)
    assert [TRANSACTION.decode(m.value())["transaction_id"] for m in late] == ["late-beyond"]
    assert count() == 2 and stored(client, key)["as_of_ms"] == now
    wait_for(lambda: flink.metric(job["jid"], "late_events") == 1, 30, "the late counter")


def test_an_undecodable_message_becomes_a_dead_letter_and_the_jobs_keep_running(
    streaming, settings
):
    topics, deployment = streaming
    topics.produce("transactions-raw", [(b"someone", b"not a framed Avro transaction")])

    def both_jobs_letters():
        found = [DEAD_LETTER.decode(m.value()) for m in topics.drain("dlq-processing-errors")]
        return found if len(found) >= 2 else None

    letters = wait_for(both_jobs_letters, what="both jobs' dead letters")
    assert {letter["original_value"] for letter in letters} == {b"not a framed Avro transaction"}
    assert {letter["reason"] for letter in letters} == {"stream_undecodable"}
    by_job = {letter["detail"].split(":")[0]: letter for letter in letters}
    assert set(by_job) == {deployment.instance_name(job) for job in (ENRICHMENT, AGGREGATES)}
    (original,) = [m for m in topics.drain("transactions-raw") if m.key() == b"someone"]
    enrichment_letter = by_job[deployment.instance_name(ENRICHMENT)]
    assert enrichment_letter["original_key"] == b"someone"
    assert (enrichment_letter["source_partition"], enrichment_letter["source_offset"]) == (
        original.partition(),
        original.offset(),
    )
    assert enrichment_letter["source_timestamp"] == original.timestamp()[1]
    flink = FlinkJobs(settings)
    for job in (ENRICHMENT, AGGREGATES):
        (found,) = flink.find(deployment.instance_name(job))
        status = flink.status(found["jid"])
        assert status.running and status.restarts == 0


def newest_checkpoint(flink: FlinkJobs, job_id: str) -> bytes | None:
    """The bytes of the job's newest completed checkpoint (None if Flink dropped it while
    it was read: it keeps only the newest)."""
    path = Path((flink.status(job_id).last_checkpoint_path or "").removeprefix("file:"))
    try:
        return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file()) or None
    except FileNotFoundError:
        return None


def test_an_erasure_request_makes_both_jobs_forget_the_user(streaming, traffic, settings):
    """The user's id and transaction ids leave both jobs' checkpoints (the user's own state
    and each merchant's; the jobs are restarted from a canonical savepoint), the others'
    state stays, the next transactions see the user's
    history gone, and a request that does not decode becomes a dead letter. Last in the
    module: it changes what the jobs hold."""
    topics, deployment = streaming
    records, _, _ = traffic
    (user, _), (other, _) = Counter(r["user_id"] for r in records).most_common(2)
    mine = [r for r in records if r["user_id"] == user]
    transactions = [r["transaction_id"] for r in mine]
    merchants = sorted({r["merchant_id"] for r in mine})
    flink = FlinkJobs(settings)
    jobs = [flink.find(deployment.instance_name(job), {"RUNNING"})[0]["jid"]
            for job in erasure_flink.FORGETTING_JOBS]  # fmt: skip

    def holding(job_id: str) -> bool:
        held = newest_checkpoint(flink, job_id)
        return held is not None and user.encode() in held and transactions[-1].encode() in held

    for job_id in jobs:  # the check can fail: before the request both hold the user
        wait_for(lambda job_id=job_id: holding(job_id), 120, "a checkpoint holding the user")
    erasure_flink.forget(settings, user, transactions, merchants, deployment, timeout=180)
    jobs = [flink.find(deployment.instance_name(job), {"RUNNING"})[0]["jid"]
            for job in erasure_flink.FORGETTING_JOBS]  # fmt: skip
    for job_id in jobs:
        held = wait_for(lambda job_id=job_id: newest_checkpoint(flink, job_id), 30, "a checkpoint")
        assert user.encode() not in held
        assert [t for t in transactions if t.encode() in held] == []
    assert other.encode() in wait_for(lambda: newest_checkpoint(flink, jobs[0]), 30, "one")
    assert erasure_flink.holding_files(settings, user, deployment) == 0

    now = int(time.time() * 1000)
    after = [{**mine[-1], "transaction_id": "after-erasure", "timestamp": now},
             {**[r for r in records if r["user_id"] == other][-1], "merchant_id": merchants[0],
              "transaction_id": "after-erasure-other", "timestamp": now}]  # fmt: skip
    produce_raw(settings, topics, after)

    def both() -> dict | None:
        found = enriched(topics, 0, timeout=0)
        return found if {"after-erasure", "after-erasure-other"} <= set(found) else None

    found = wait_for(both, 120, "the transactions after the erasure")
    assert found["after-erasure"]["features"]["user_transaction_count_90d"] == 0
    assert found["after-erasure-other"]["features"]["user_transaction_count_90d"] > 0
    at_merchant = [r for r in records if r["merchant_id"] == merchants[0] and r["user_id"] != user]
    merchant = found["after-erasure-other"]["features"]
    assert merchant["merchant_transaction_volume_30d"] == len(at_merchant)
    assert merchant["merchant_unique_customers_30d"] == len({r["user_id"] for r in at_merchant})

    topics.produce("fraud-erasures", [(b"someone", b"not a request")])

    def letters() -> list | None:
        found = [DEAD_LETTER.decode(m.value()) for m in topics.drain("dlq-processing-errors")]
        mine = [f for f in found if f["source_topic"] == topics.name("fraud-erasures")]
        return mine if len(mine) >= 2 else None

    dead = wait_for(letters, what="both jobs' dead letters of the bad request")
    assert {letter["original_value"] for letter in dead} == {b"not a request"}
