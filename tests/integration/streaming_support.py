"""Traffic, batch recomputation and comparisons shared by the streaming tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd
import redis
from confluent_kafka import Producer

from fraud_platform.contracts import ENRICHED_TRANSACTION, TRANSACTION
from fraud_platform.features.catalog import LABEL_DELAY_DAYS
from fraud_platform.features.sql import compute_features
from fraud_platform.features.stream import stream_features
from fraud_platform.lake import transaction_record
from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import epoch_day, write_reference, write_transactions_by_hour
from fraud_platform.simulation.reference import build_world
from fraud_platform.simulation.traffic import generate_day

from ..equality import same


def wait_for(condition, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def simulated_days(lake_root: str, seed: int, days: int = 2, volume: int = 5_200):
    """`days` simulated days before today of a 400-user world: the transactions in time
    order, and a lake holding them (and the reference tables) as `simulate` writes history."""
    world = build_world(seed, n_users=400, n_merchants=300)
    today = epoch_day(datetime.now(UTC).date())
    lake = LakeResource(root=lake_root)
    write_reference(lake, world, f"sim{seed}")
    tables = [generate_day(world, day, volume).transactions for day in range(today - days, today)]
    for table in tables:
        write_transactions_by_hour(lake, table, f"part-sim{seed}.parquet")
    records = [transaction_record(row) for table in tables for row in table.to_pylist()]
    dates = sorted({datetime.fromtimestamp(r["timestamp"] / 1000, UTC).date().isoformat()
                    for r in records})  # fmt: skip
    return records, lake, dates


def produce_raw(settings, topics, records: list[dict]) -> None:
    """Onto transactions-raw as the validator writes it: keyed by user, record time = event
    time, in order (idempotent: a retried batch cannot overtake the next one, which would
    hand the jobs a user's events out of order)."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5,
                         "enable.idempotence": True})  # fmt: skip
    for record in records:
        producer.produce(topics.name("transactions-raw"), TRANSACTION.encode(record),
                         record["user_id"], timestamp=record["timestamp"])  # fmt: skip
        producer.poll(0)
    assert producer.flush(60) == 0


def enriched(topics, expected: int, timeout: float = 180) -> dict[str, dict]:
    """Every committed enriched message by transaction id, failing on any seen twice."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, dict] = {}
        for message in topics.drain("transactions-enriched", idle_s=5):
            record = ENRICHED_TRANSACTION.decode(message.value())
            assert record["transaction_id"] not in found, "a transaction enriched twice"
            found[record["transaction_id"]] = record
        if len(found) >= expected or time.monotonic() > deadline:
            return found


def batch_features(
    spark,
    processed,
    extra: pd.DataFrame | None = None,
    labels: list[tuple] = (),
    label_delay_days: int = LABEL_DELAY_DAYS,
) -> dict[str, dict]:
    """The batch's features (Spark, the catalog's SQL) of processed rows (plus `extra`), with
    the (transaction_id, is_fraud, complete_ms) labels."""
    frame = processed
    if extra is not None:
        frame = processed.unionByName(spark.createDataFrame(extra, schema=processed.schema))
    label_frame = spark.createDataFrame(
        list(labels) or [("none", False, 0)],
        "transaction_id string, is_fraud boolean, complete_ms bigint",
    )
    rows = compute_features(spark, frame, label_frame, label_delay_days).collect()
    return {r["transaction_id"]: r.asDict() for r in rows}


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


def aggregates_against_batch(settings, deployment, records, spark, processed, sample: int = 40):
    """(values compared, mismatches) between the aggregates job's Redis hashes and the batch
    recomputed at each hash's cut-off, for a sample of users and merchants, once the job has
    reached each sampled entity's last event."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = {"user": deployment.key_prefix + "user:{}:agg:{}",
            "merchant": deployment.key_prefix + "merchant:{}"}  # fmt: skip
    latest: dict[str, dict[str, int]] = {"user": {}, "merchant": {}}
    for r in records:
        for entity in latest:
            entity_id = r[f"{entity}_id"]
            latest[entity][entity_id] = max(latest[entity].get(entity_id, 0), r["timestamp"])
    chosen = {e: dict(sorted(latest[e].items())[:: max(1, len(latest[e]) // sample)])
              for e in latest}  # fmt: skip

    def key(entity: str, entity_id: str, window: str = "30d") -> str:
        args = (entity_id, window) if entity == "user" else (entity_id,)
        return keys[entity].format(*args)

    def caught_up() -> bool:
        return all(stored(client, key(e, i)).get("as_of_ms") == ts
                   for e in chosen for i, ts in chosen[e].items())  # fmt: skip

    wait_for(caught_up, what="the aggregates job to reach each sample's last event")
    rows = processed.toPandas()
    extra = pd.concat([probes(rows, e, chosen[e]) for e in chosen])
    expected = batch_features(spark, processed, extra)
    features = stream_features()
    mismatches, compared = [], 0
    for entity in chosen:
        for entity_id in chosen[entity]:
            for feature in features[f"online_{entity}_windows"]:
                value = stored(client, key(entity, entity_id, feature["window"])).get(
                    feature["name"]
                )
                want = expected[f"probe-{entity_id}"][feature["name"]]
                compared += 1
                if not same(value, want):
                    mismatches.append((entity_id, feature["name"], value, want))
    return compared, mismatches
