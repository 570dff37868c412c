"""The Flink jobs on the real stack compute what the batch computes.

Two simulated days (over 10,000 transactions of a 400-user world) go onto transactions-raw
as live traffic would, and into a lake as `simulate` writes history. The enrichment job's
output (read committed) is compared feature by feature with the batch (Spark, the catalog's
generated SQL over the lake's processed rows); the aggregates job's Redis hashes for a sample
of users and merchants are compared with the batch recomputed at the same cut-off. Then
events inside the allowed lateness update the windows and one beyond it lands in the late
topic.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pandas as pd
import pytest
from confluent_kafka import Producer

from fraud_platform.batch.processing import process_transactions
from fraud_platform.contracts import ENRICHED_TRANSACTION, TRANSACTION
from fraud_platform.features.sql import compute_features
from fraud_platform.features.stream import enriched_feature_names, stream_features
from fraud_platform.lake import transaction_record
from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import epoch_day, write_reference, write_transactions_by_hour
from fraud_platform.simulation.reference import build_world
from fraud_platform.simulation.traffic import generate_day
from fraud_platform.streaming.control import FlinkJobs, deploy
from fraud_platform.streaming.jobs import AGGREGATES, ENRICHMENT, Deployment, job_spec

pytestmark = pytest.mark.integration
MINUTE = 60_000
HOUR = 60 * MINUTE


def same(a, b) -> bool:
    a = None if a is None or (isinstance(a, float) and math.isnan(a)) else a
    b = None if b is None or (isinstance(b, float) and math.isnan(b)) else b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """Two simulated days before today: the transactions (time order) and their lake."""
    world = build_world(7, n_users=400, n_merchants=300)
    today = epoch_day(datetime.now(UTC).date())
    lake = LakeResource(root=str(tmp_path_factory.mktemp("lake")))
    write_reference(lake, world, "sim7")
    days = [generate_day(world, day, 5_200).transactions for day in (today - 2, today - 1)]
    for table in days:
        write_transactions_by_hour(lake, table, "part-sim7.parquet")
    records = [transaction_record(row) for table in days for row in table.to_pylist()]
    dates = sorted({datetime.fromtimestamp(r["timestamp"] / 1000, UTC).date().isoformat()
                    for r in records})  # fmt: skip
    return records, lake, dates


@pytest.fixture(scope="module")
def streaming(stack, settings, traffic):
    """Both jobs deployed on this module's own topics, Redis keys and lake."""
    from .ingestion_support import TopicSet

    records, lake, _ = traffic
    topics = TopicSet(settings.kafka_bootstrap)
    deployment = Deployment(
        topic_prefix=topics.prefix,
        key_prefix=f"{topics.prefix}:",
        lake_root=lake.root,
        checkpoint_interval="2s",
    )
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5})
    for record in records:
        value = TRANSACTION.encode(record)
        producer.produce(topics.name("transactions-raw"), value, record["user_id"],
                         timestamp=record["timestamp"])  # fmt: skip
        producer.poll(0)
    assert producer.flush(60) == 0
    # Deployed onto the waiting backlog: a job that idles first marks its partitions idle
    # (10 s), and the first partition read would then alone drive the watermark hours ahead
    # of the others' backlog in this compressed replay.
    jobs = [deploy(settings, job, deployment) for job in (ENRICHMENT, AGGREGATES)]
    yield topics, deployment
    flink = FlinkJobs(settings)
    for job_id in jobs:
        flink.cancel(job_id)
    client = __import__("redis").Redis.from_url(settings.redis_url)
    for key in client.scan_iter(f"{deployment.key_prefix}*", count=1000):
        client.delete(key)
    topics.delete()


@pytest.fixture(scope="module")
def batch(spark, traffic):
    """The batch's processed rows of the lake, as pandas."""
    _, lake, dates = traffic
    processed, _ = process_transactions(spark, lake, dates)
    return processed


def batch_features(spark, processed, extra: pd.DataFrame | None = None) -> dict[str, dict]:
    frame = processed
    if extra is not None:
        frame = processed.unionByName(spark.createDataFrame(extra, schema=processed.schema))
    labels = spark.createDataFrame(
        [("none", False, 0)], "transaction_id string, is_fraud boolean, complete_ms bigint"
    )
    rows = compute_features(spark, frame, labels).collect()
    return {r["transaction_id"]: r.asDict() for r in rows}


def enriched(topics, expected: int) -> dict[str, dict]:
    found: dict[str, dict] = {}
    deadline = time.monotonic() + 180
    while len(found) < expected and time.monotonic() < deadline:
        for message in topics.drain("transactions-enriched", idle_s=5):
            record = ENRICHED_TRANSACTION.decode(message.value())
            assert record["transaction_id"] not in found, "a transaction enriched twice"
            found[record["transaction_id"]] = record
    return found


def test_enriched_features_equal_the_batch_features(streaming, traffic, spark, batch):
    topics, _ = streaming
    records, _, _ = traffic
    stream = enriched(topics, len(records))
    assert len(records) >= 10_000 and len(stream) == len(records)
    expected = batch_features(spark, batch)
    names = enriched_feature_names()
    mismatches = [
        (tid, name, message["features"].get(name), expected[tid][name])
        for tid, message in stream.items()
        for name in names
        if not same(message["features"].get(name), expected[tid][name])
    ]
    assert mismatches == [], f"{len(mismatches)} mismatches, e.g. {mismatches[:5]}"
    # The features are not trivially empty: the windows saw history.
    assert sum(m["features"]["user_transaction_count_24h"] > 0 for m in stream.values()) > 5_000


def wait_for(condition, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def stored(client, key: str) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in client.hgetall(key).items()}


def probes(processed: pd.DataFrame, entity: str, as_of: dict[str, int]) -> pd.DataFrame:
    """One row per sampled entity one millisecond after its cut-off, so the batch's windows
    before the probe are the windows as of the cut-off, as the online store holds them.
    The probe's other side is an id of its own, so no real entity's window sees it."""
    key, other = ("user_id", "merchant_id") if entity == "user" else ("merchant_id", "user_id")
    rows = processed.sort_values("ts_ms").groupby(key).tail(1).set_index(key).loc[list(as_of)]
    rows = rows.reset_index()
    rows["transaction_id"] = "probe-" + rows[key]
    rows[other] = "probe-" + rows[key]
    rows["ts_ms"] = rows[key].map(as_of) + 1
    rows["timestamp"] = pd.to_datetime(rows["ts_ms"], unit="ms", utc=True)
    return rows[processed.columns]


def test_redis_aggregates_equal_the_batch_at_their_cut_off(
    streaming, traffic, spark, batch, settings
):
    import redis

    _, deployment = streaming
    records, _, _ = traffic
    client = redis.Redis.from_url(settings.redis_url)
    keys = {"user": deployment.key_prefix + "user:{}:agg:{}",
            "merchant": deployment.key_prefix + "merchant:{}"}  # fmt: skip
    latest = {"user": {}, "merchant": {}}
    for r in records:
        for entity in ("user", "merchant"):
            entity_id = r[f"{entity}_id"]
            latest[entity][entity_id] = max(latest[entity].get(entity_id, 0), r["timestamp"])
    sample = {e: dict(sorted(latest[e].items())[:: max(1, len(latest[e]) // 40)]) for e in latest}

    def caught_up() -> bool:
        users = all(
            stored(client, keys["user"].format(u, "30d")).get("as_of_ms") == ts
            for u, ts in sample["user"].items()
        )
        return users and all(
            stored(client, keys["merchant"].format(m)).get("as_of_ms") == ts
            for m, ts in sample["merchant"].items()
        )

    wait_for(caught_up, what="the aggregates job to reach the last event of each sample")
    processed = batch.toPandas()
    extra = pd.concat([probes(processed, e, sample[e]) for e in ("user", "merchant")])
    expected = batch_features(spark, batch, extra)
    features = stream_features()
    mismatches, compared = [], 0
    for entity, spec in (("user", "online_user_windows"), ("merchant", "online_merchant_windows")):
        for entity_id in sample[entity]:
            for feature in features[spec]:
                args = (entity_id, feature["window"]) if entity == "user" else (entity_id,)
                value = stored(client, keys[entity].format(*args)).get(feature["name"])
                want = expected[f"probe-{entity_id}"][feature["name"]]
                compared += 1
                if not same(value, want):
                    mismatches.append((entity_id, feature["name"], value, want))
    assert compared > 1_000 and mismatches == [], mismatches[:5]


def test_late_events_inside_the_bound_count_and_beyond_it_go_to_the_late_topic(streaming, settings):
    import redis

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
    send("late-now", now)
    wait_for(lambda: count() == 1, what="the first event in Redis")
    time.sleep(3)  # the watermark moves to now - 5 min
    send("late-inside", now - 3 * MINUTE)  # after the watermark - lateness (now - 10 min)
    send("late-beyond", now - 20 * MINUTE)  # before it
    wait_for(lambda: count() == 2, what="the late event inside the bound to count")
    late = topics.drain("transactions-late", idle_s=5)
    assert [TRANSACTION.decode(m.value())["transaction_id"] for m in late] == ["late-beyond"]
    assert count() == 2 and stored(client, key)["as_of_ms"] == now
    flink = FlinkJobs(settings)
    (job, *_) = flink.find(job_spec(settings, AGGREGATES, deployment)["name"])
    wait_for(lambda: flink.metric(job["jid"], "late_events") == 1, 30, "the late counter")


def test_an_undecodable_message_becomes_a_dead_letter_and_the_jobs_keep_running(
    streaming, settings
):
    from fraud_platform.contracts import DEAD_LETTER

    topics, deployment = streaming
    topics.produce("transactions-raw", [(b"someone", b"not a framed Avro transaction")])
    letters = wait_for(
        lambda: [DEAD_LETTER.decode(m.value()) for m in topics.drain("dlq-processing-errors")],
        what="the dead letters",
    )
    assert {letter["original_value"] for letter in letters} == {b"not a framed Avro transaction"}
    assert {letter["reason"] for letter in letters} == {"stream_undecodable"}
    assert {letter["detail"].split(":")[0] for letter in letters} == {
        job_spec(settings, job, deployment)["name"] for job in (ENRICHMENT, AGGREGATES)
    }
    flink = FlinkJobs(settings)
    for job in (ENRICHMENT, AGGREGATES):
        (found,) = flink.find(job_spec(settings, job, deployment)["name"])
        status = flink.status(found["jid"])
        assert status.running and status.restarts == 0
