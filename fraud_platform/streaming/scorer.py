"""The online scorer: transactions-enriched -> model-predictions.

For each consumed batch it reads every transaction's user and merchant features from Redis
in one round trip (the online store's batch form), joins them with the features the
enrichment job computed, scores with the production model (`models/current`, reloaded when
the pointer moves) and writes one prediction per transaction: probability, decision
(approve / review / decline by the configured thresholds), model version, the features it
used and its latency. Offsets are committed after the predictions are acknowledged, so a
crash re-scores rather than skips; a re-scored transaction keeps its prediction_id
(transaction id and model version), so duplicates are recognisable downstream.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fraud_platform.contracts import ENRICHED_TRANSACTION, MODEL_PREDICTION, ContractError
from fraud_platform.features.catalog import CATEGORICAL_FEATURES, MODEL_FEATURES
from fraud_platform.features.online import FeatureStore, OnlineFeatures
from fraud_platform.messaging import consume_ready, produce
from fraud_platform.models import registry
from fraud_platform.models.gate import Thresholds
from fraud_platform.models.training import known_categories, predict
from fraud_platform.topics import (
    DLQ_PROCESSING_ERRORS,
    MODEL_PREDICTIONS,
    TRANSACTIONS_ENRICHED,
    topic_name,
)

log = logging.getLogger(__name__)
FEATURES = [*MODEL_FEATURES, *CATEGORICAL_FEATURES]


@dataclass(frozen=True)
class ScorerConfig:
    bootstrap: str
    redis_url: str
    topic_prefix: str = ""
    key_prefix: str = ""
    group: str = "fraud-scorer"
    heartbeat: str = ""  # a file touched while the scorer lives (the stack's health check)
    batch: int = 500
    reload_s: float = 30.0
    review: float = 0.5
    decline: float = 0.9

    @classmethod
    def from_env(cls, settings) -> ScorerConfig:
        return cls(
            bootstrap=settings.kafka_bootstrap,
            redis_url=settings.redis_url,
            topic_prefix=os.environ.get("FRAUD_TOPIC_PREFIX", ""),
            heartbeat=os.environ.get("FRAUD_SCORER_HEARTBEAT", ""),
            review=Thresholds.from_env().review,
            decline=float(os.environ.get("FRAUD_DECLINE_THRESHOLD", cls.decline)),
        )

    def decision(self, probability: float) -> str:
        if probability >= self.decline:
            return "decline"
        return "review" if probability >= self.review else "approve"


class ProductionModel:
    """models/current, looked up at most every `reload_s` and reloaded when it moved.
    `clock` is injectable so a test can step time instead of sleeping."""

    def __init__(self, lake, reload_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lake, self.reload_s, self.clock = lake, reload_s, clock
        self.version: str | None = None
        self.booster = None
        self.categories: dict[str, set] = {}
        self.checked = float("-inf")

    def get(self) -> tuple[str | None, Any]:
        if self.clock() - self.checked >= self.reload_s:
            self.checked = self.clock()
            version = registry.current_version(self.lake)
            if version is not None and version != self.version:
                self.booster = registry.load_booster(self.lake, version)
                self.categories = known_categories(self.booster)
                log.info("scoring with model %s (was %s)", version, self.version)
                self.version = version
        return self.version, self.booster


def feature_row(enriched: dict[str, Any], online: OnlineFeatures) -> dict[str, Any]:
    """The model's inputs for one transaction: what the enrichment computed (every catalog
    feature, as the batch does; a null there is a value, e.g. no event in the window), and
    only for a feature the message lacks (an enrichment of an older catalog), the merchant's
    and the user's online features; what none has stays missing (XGBoost takes a missing
    value as such)."""
    row = {}
    for name in FEATURES:
        if name in enriched:
            row[name] = enriched[name]
            continue
        found = (source[name] for source in (online.merchant, online.user) if name in source)
        row[name] = next(found, None)
    return row


def _used(row: dict[str, Any]) -> dict[str, Any]:
    """features_used as the contract's map (numbers as doubles, categories as text)."""
    used = {}
    for name, value in row.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            used[name] = None
        elif isinstance(value, str):
            used[name] = value
        else:
            used[name] = float(value)
    return used


class Scorer:
    def __init__(self, config: ScorerConfig, lake) -> None:
        import redis
        from confluent_kafka import Consumer, Producer

        self.config = config
        self.model = ProductionModel(lake, config.reload_s)
        self.store = FeatureStore(redis.Redis.from_url(config.redis_url), config.key_prefix)
        self.consumer = Consumer({
            "bootstrap.servers": config.bootstrap, "group.id": config.group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "isolation.level": "read_committed",
        })  # fmt: skip
        self.producer = Producer({"bootstrap.servers": config.bootstrap, "linger.ms": 2,
                                  "enable.idempotence": True})  # fmt: skip
        self.predictions = topic_name(MODEL_PREDICTIONS.name, config.topic_prefix)
        self.dead_letters = topic_name(DLQ_PROCESSING_ERRORS.name, config.topic_prefix)
        self.scored = 0
        self.stopping = False

    def score(self, messages: list[Any]) -> int:
        """Score one batch; returns the predictions written."""
        received = time.perf_counter()
        version, booster = self.model.get()
        records, keys = [], []
        for message in messages:
            try:
                records.append(ENRICHED_TRANSACTION.decode(message.value()))
                keys.append(message.key())
            except ContractError as error:
                self._dead_letter(message, error)
        if not records:
            return 0
        online = self.store.get_many([(r["user_id"], r["merchant_id"]) for r in records])
        rows = [feature_row(r["features"], o) for r, o in zip(records, online, strict=True)]
        frame = pd.DataFrame(rows, columns=FEATURES)
        probabilities = predict(booster, frame, self.model.categories)
        now_ms = int(time.time() * 1000)
        latency_ms = (time.perf_counter() - received) * 1000
        for record, row, probability in zip(records, rows, probabilities, strict=True):
            prediction = {
                "prediction_id": f"{record['transaction_id']}:{version}",
                "transaction_id": record["transaction_id"],
                "fraud_probability": float(probability),
                "decision": self.config.decision(float(probability)),
                "model_version": version,
                "features_used": _used(row),
                "prediction_latency_ms": latency_ms,
                "timestamp": now_ms,
            }
            produce(self.producer, self.predictions, record["transaction_id"],
                    MODEL_PREDICTION.encode(prediction))  # fmt: skip
        return len(records)

    def _dead_letter(self, message: Any, error: Exception) -> None:
        from fraud_platform.contracts import DEAD_LETTER

        envelope = DEAD_LETTER.encode({
            "original_key": message.key(), "original_value": message.value(),
            "reason": "unscorable", "detail": f"scorer: {error}",
            "source_topic": message.topic(), "source_partition": message.partition(),
            "source_offset": message.offset(), "source_timestamp": message.timestamp()[1],
            "rejected_at": int(time.time() * 1000), "transaction_id": None,
        })  # fmt: skip
        produce(self.producer, self.dead_letters, message.key(), envelope)

    def wait_for_model(self) -> None:
        """Nothing is consumed before a production model exists: the enriched topic keeps
        the backlog, and scoring starts from it once a model is promoted."""
        while not self.stopping and self.model.get()[0] is None:
            log.warning("no production model yet (models/current); waiting")
            for _ in range(max(1, int(self.config.reload_s))):
                self._beat()
                time.sleep(1)
            self.model.checked = float("-inf")

    def _beat(self) -> None:
        if self.config.heartbeat:
            Path(self.config.heartbeat).touch()

    def run(self, idle_exit_s: float | None = None) -> int:
        self.wait_for_model()
        enriched = topic_name(TRANSACTIONS_ENRICHED.name, self.config.topic_prefix)
        self.consumer.subscribe([enriched])
        last = time.monotonic()
        while not self.stopping:
            self._beat()
            messages = [m for m in consume_ready(self.consumer, self.config.batch, timeout=0.2)
                        if m.error() is None]  # fmt: skip
            if not messages:
                if idle_exit_s is not None and time.monotonic() - last > idle_exit_s:
                    break
                continue
            last = time.monotonic()
            self.scored += self.score(messages)
            if self.producer.flush(30):
                raise RuntimeError("predictions not acknowledged within 30 s")
            self.consumer.commit(asynchronous=False)
        self.consumer.close()
        return self.scored


def main() -> None:
    """The stack service: score until SIGTERM."""
    from fraud_platform.config import Settings
    from fraud_platform.resources import LakeResource

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    lake = LakeResource(root=settings.lake_root, s3_endpoint_url=settings.s3_endpoint_url)
    scorer = Scorer(ScorerConfig.from_env(settings), lake)

    def stop(*_: Any) -> None:
        scorer.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scorer.run()
