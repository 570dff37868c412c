"""Replaying a time range of transactions-ingest (the Dagster job, then the CLI): what was
wrongly dead-lettered in the range reaches transactions-raw, nothing outside it moves, and
nothing is written twice."""

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from assets.recovery import ingest_replay
from fraud_platform.cli import main
from fraud_platform.contracts import TRANSACTION
from fraud_platform.ingestion.rules import Rules
from fraud_platform.ingestion.validator import Validator, ValidatorConfig
from fraud_platform.resources import KafkaResource

from .ingestion_support import transaction

pytestmark = pytest.mark.integration
MINUTE_MS = 60_000


def send(bootstrap: str, topic: str, messages: list[tuple[bytes, int]]) -> None:
    """Produce (value, timestamp) pairs stamped with their event time, as producers do."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for value, at in messages:
        producer.produce(topic, value, b"k", timestamp=at)
    assert producer.flush(30) == 0


def test_a_replayed_range_delivers_what_was_wrongly_dead_lettered_and_nothing_twice(
    settings, topics, monkeypatch
):
    config = ValidatorConfig(
        bootstrap=settings.kafka_bootstrap, redis_url=settings.redis_url,
        topic_prefix=topics.prefix, group_id=f"{topics.prefix}validator",
        transactional_id=f"{topics.prefix}validator",
    )  # fmt: skip
    now = int(time.time() * 1000)
    start, end = now - 120 * MINUTE_MS, now - 60 * MINUTE_MS
    encoded: dict[str, list[tuple[bytes, int]]] = {}
    parts = {"before": start - 10 * MINUTE_MS, "inside": start + 10 * MINUTE_MS,
             "after": end + 10 * MINUTE_MS}  # fmt: skip
    for n, (part, at) in enumerate(parts.items()):
        amounts = [800.0 if i % 10 == 0 else 100.0 for i in range(50)]
        records = [transaction(n * 100 + i, at, topics.prefix, timestamp=at + i, amount=amount)
                   for i, amount in enumerate(amounts)]  # fmt: skip
        encoded[part] = [(TRANSACTION.encode(r), r["timestamp"]) for r in records]
    big = {part: [m for m in messages if TRANSACTION.decode(m[0])["amount"] == 800.0]
           for part, messages in encoded.items()}  # fmt: skip
    garbage = (b"not avro", start + 20 * MINUTE_MS)
    repeat = encoded["inside"][1]
    send(settings.kafka_bootstrap, topics.name("transactions-ingest"),
         [*encoded["before"], *encoded["inside"], repeat, garbage, *encoded["after"]])  # fmt: skip

    # A validator whose amount limit was set too low dead-letters the 800s of every part.
    strict = Validator(replace(config, rules=Rules(max_amount=500.0)))
    strict.run(idle_exit_s=3)
    first_raw, first_dead = topics.outputs()
    assert len(first_raw) == 3 * 45
    assert {k: len(v) for k, v in first_dead.items() if v} == {
        "dlq-schema-errors": 3 * 5 + 1, "dlq-duplicates": 1}  # fmt: skip

    iso = lambda ms: datetime.fromtimestamp(ms / 1000, UTC).isoformat()  # noqa: E731
    run = ingest_replay.execute_in_process(
        run_config={"ops": {"replay_ingest_range": {"config": {
            "start": iso(start), "end": iso(end), "topic_prefix": topics.prefix}}}},
        resources={"kafka": KafkaResource(bootstrap_servers=settings.kafka_bootstrap)},
    )  # fmt: skip
    assert run.success and run.output_for_node("replay_ingest_range") == 5  # the range's 800s
    output = next(e for e in run.events_for_node("replay_ingest_range") if e.is_successful_output)
    replay = {k: v.value for k, v in output.step_output_data.metadata.items()}
    assert replay["read"] == 50 + 2
    assert replay["already_raw"] == 45 + 1  # the repeat's transaction is in raw too
    assert replay["already_dead"] == 1  # the garbage: rejected still, and already dead-lettered
    assert replay["dead_lettered"] == {} and replay["repeats"] == 0

    raw, dead = topics.outputs()
    expected = [v for v, _ in encoded["before"] + encoded["after"] if (v, _) not in
                big["before"] + big["after"]] + [v for v, _ in encoded["inside"]]  # fmt: skip
    assert sorted(m.value() for m in raw) == sorted(expected)  # each once
    replayed = {m.value(): m.timestamp()[1] for m in raw if m.value() in dict(big["inside"])}
    assert replayed == dict(big["inside"])  # with their event time
    assert {k: len(v) for k, v in dead.items()} == {k: len(v) for k, v in first_dead.items()}

    monkeypatch.setenv("FRAUD_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps at 80 otherwise
    minute = lambda ms: datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")  # noqa: E731
    again = CliRunner().invoke(main, ["ingest", "replay", "--from", minute(start),
                                      "--to", minute(end)])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "52 messages replayed: 0 delivered to transactions-raw, 51 already there, " \
           "1 already dead-lettered" in again.output  # fmt: skip
    assert len(topics.drain("transactions-raw")) == len(raw)
