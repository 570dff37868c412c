"""The stack manager: health, idempotent `up`, the Dagster UI, and a clean `down`."""

import time
import uuid

import httpx
import pytest
import redis
from confluent_kafka import Consumer, Producer

from fraud_platform.config import Ports, Settings
from fraud_platform.stack.manager import SERVICE_NAMES, Stack

pytestmark = pytest.mark.integration


def test_every_service_is_healthy_and_reports_its_memory(stack):
    rows = {row.name: row for row in stack.status()}
    assert set(rows) == set(SERVICE_NAMES)
    for row in rows.values():
        if stack.services[row.name].on_demand and not row.running:
            continue  # traffic and docs: started by `fraud-platform run` or by name
        assert row.healthy, row.name
        assert row.rss_bytes > 0, row.name


def test_up_again_leaves_running_services_alone(stack):
    pids = {name: s.process.pid() for name, s in stack.services.items()}
    results = stack.up()
    assert {r.action for r in results} == {"already running"}
    assert {name: s.process.pid() for name, s in stack.services.items()} == pids


def test_the_dagster_ui_answers_and_shows_the_platform(stack):
    url = stack.services["dagster"].endpoint()
    assert httpx.get(url, timeout=10).status_code == 200
    query = "{ assetNodes { assetKey { path } } }"
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30)
    paths = {"/".join(node["assetKey"]["path"]) for node in response.json()["data"]["assetNodes"]}
    assert "kafka/transactions-raw" in paths


def _consume_one(bootstrap: str, topic: str) -> bytes | None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reuse-check", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                return message.value()
    finally:
        consumer.close()
    return None


def test_down_leaves_nothing_and_a_second_up_reuses_kafka_storage_and_redis_data(
    tmp_path, free_ports, monkeypatch
):
    """A private Redis + Kafka in their own state dir and ports, through a full cycle. Its
    cluster id starts with "-", as 1 in 64 random ids do (the format tool once took those
    for an option)."""
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(bytes=b"\xf8" + bytes(15)))
    ports = Ports(redis=free_ports(), kafka=free_ports(), kafka_controller=free_ports())
    private = Stack(Settings(home=tmp_path / "home", ports=ports))
    settings = private.settings
    try:
        private.up(["redis", "kafka"])
        meta = (tmp_path / "home" / "kafka" / "data" / "meta.properties").read_text()
        assert "cluster.id=-" in meta
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        producer.produce("transactions-raw", key=b"user_1", value=b"kept across restarts")
        assert producer.flush(15) == 0
        redis.Redis.from_url(settings.redis_url).set("kept", "yes")

        private.down()
        assert private.leftover_pids() == []
        assert not any(s.process.is_running() for s in private.services.values())

        results = private.up(["redis", "kafka"])
        assert [r.action for r in results] == ["started", "started"]
        assert (tmp_path / "home" / "kafka" / "data" / "meta.properties").read_text() == meta
        assert redis.Redis.from_url(settings.redis_url).get("kept") == b"yes"
        assert _consume_one(settings.kafka_bootstrap, "transactions-raw") == b"kept across restarts"
    finally:
        private.down()
    assert private.leftover_pids() == []


def test_stopping_an_empty_list_of_services_stops_none(tmp_path, free_ports):
    """A caller stops what it started; having started nothing, it must not stop everything."""
    private = Stack(Settings(home=tmp_path / "home", ports=Ports(redis=free_ports())))
    try:
        private.up(["redis"])
        private.down([])
        assert private.services["redis"].process.is_running()
        private.down(["redis"])
        assert not private.services["redis"].process.is_running()
    finally:
        private.down()
    assert private.leftover_pids() == []
