"""The scorer on the real stack: enriched transactions in, one prediction each out, scored by
the production model on the enrichment's and the online store's features, with the
configured decisions; a new production model is picked up without a restart."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import redis
from confluent_kafka import Producer

from fraud_platform.contracts import DEAD_LETTER, ENRICHED_TRANSACTION, MODEL_PREDICTION
from fraud_platform.features.online import OnlineFeatures
from fraud_platform.models import registry
from fraud_platform.models.training import Hyperparameters, predict, train
from fraud_platform.resources import LakeResource
from fraud_platform.streaming.scorer import (
    FEATURES,
    ProductionModel,
    Scorer,
    ScorerConfig,
    feature_row,
)

from .ingestion_support import TopicSet

pytestmark = pytest.mark.integration


def model(seed: int):
    """A small model that flags large amounts far from home (enough to give spread scores)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.random(600) for name in FEATURES})
    frame["amount"] = rng.lognormal(3, 1, 600)
    frame["merchant_category"] = rng.choice(["grocery", "travel"], 600)
    frame["merchant_risk_tier"] = rng.choice(["low", "high"], 600)
    frame["label"] = (frame["amount"] > 60).astype(int)
    frame["split"] = "train"
    booster, _ = train(frame, Hyperparameters(rounds=15))
    return booster


def promote(lake, version: str, booster) -> None:
    registry.save_candidate(lake, version, bytes(booster.save_raw(raw_format="json")), {})
    registry.promote(lake, version, "test")


def enriched(i: int, run: str) -> dict:
    return {
        "transaction_id": f"{run}-{i}", "user_id": f"u{i % 7}", "merchant_id": "m1",
        "timestamp": int(time.time() * 1000),
        "features": {"amount": float(5 * i), "hour_of_day": 12.0, "is_online": 1.0,
                     "merchant_category": "travel", "user_transaction_count_24h": float(i % 4)},
        "feature_version": "v1",
    }  # fmt: skip


@pytest.fixture
def setup(stack, settings, tmp_path):
    topics = TopicSet(settings.kafka_bootstrap)
    client = redis.Redis.from_url(settings.redis_url)
    merchant = {"merchant_transaction_volume_24h": 40, "merchant_unique_customers_24h": 12}
    client.hset(f"{topics.prefix}merchant:m1", mapping=merchant)
    lake = LakeResource(root=str(tmp_path / "lake"))
    yield topics, lake, client, merchant
    client.delete(f"{topics.prefix}merchant:m1")
    topics.delete()


def test_each_enriched_transaction_gets_one_prediction_from_the_production_model(
    settings, setup, unique
):
    topics, lake, _, merchant = setup
    booster = model(1)
    promote(lake, "v1", booster)
    records = [enriched(i, unique) for i in range(60)]
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for record in records:
        producer.produce(topics.name("transactions-enriched"), ENRICHED_TRANSACTION.encode(record),
                         record["user_id"])  # fmt: skip
    producer.produce(topics.name("transactions-enriched"), b"not an enriched transaction", b"x")
    assert producer.flush(30) == 0

    online = OnlineFeatures("u", "m1", merchant={k: float(v) for k, v in merchant.items()})
    rows = [feature_row(r["features"], online) for r in records]
    expected = predict(booster, pd.DataFrame(rows, columns=FEATURES))
    levels = np.unique(expected)
    assert len(levels) >= 3
    # Thresholds between the lowest two and the highest two scores: all three decisions occur.
    review, decline = (levels[0] + levels[1]) / 2, (levels[-2] + levels[-1]) / 2
    config = ScorerConfig(
        settings.kafka_bootstrap,
        settings.redis_url,
        topic_prefix=topics.prefix,
        key_prefix=topics.prefix,
        group=f"scorer-{unique}",
        review=float(review),
        decline=float(decline),
    )
    assert Scorer(config, lake).run(idle_exit_s=3) == 60

    found = topics.drain_all(["model-predictions", "dlq-processing-errors"])
    decoded = [MODEL_PREDICTION.decode(m.value()) for m in found["model-predictions"]]
    predictions = {p["transaction_id"]: p for p in decoded}
    assert len(decoded) == len(predictions)
    assert set(predictions) == {r["transaction_id"] for r in records}
    decisions = set()
    for record, probability in zip(records, expected, strict=True):
        prediction = predictions[record["transaction_id"]]
        assert prediction["fraud_probability"] == pytest.approx(float(probability), abs=1e-6)
        assert prediction["decision"] == config.decision(float(probability))
        assert prediction["model_version"] == "v1"
        assert prediction["prediction_id"] == f"{record['transaction_id']}:v1"
        assert prediction["features_used"]["merchant_transaction_volume_24h"] == 40.0
        assert prediction["features_used"]["amount"] == record["features"]["amount"]
        assert prediction["prediction_latency_ms"] > 0
        decisions.add(prediction["decision"])
    assert decisions == {"approve", "review", "decline"}
    (letter,) = [DEAD_LETTER.decode(m.value()) for m in found["dlq-processing-errors"]]
    assert letter["reason"] == "unscorable"
    assert letter["original_value"] == b"not an enriched transaction"


def test_a_newly_promoted_model_is_picked_up_without_a_restart(setup):
    _, lake, _, _ = setup
    now = [0.0]
    production = ProductionModel(lake, reload_s=0.2, clock=lambda: now[0])
    assert production.get() == (None, None)
    promote(lake, "v1", model(1))
    now[0] += 0.3
    assert production.get()[0] == "v1"
    promote(lake, "v2", model(2))
    now[0] += 0.1
    assert production.get()[0] == "v1"  # looked up at most every reload_s
    now[0] += 0.1
    version, booster = production.get()
    assert version == "v2" and booster is not None
