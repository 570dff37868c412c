"""Every topic of the catalog exists on the broker with its retention and carries messages."""

import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource

from fraud_platform.messaging import consume_ready
from fraud_platform.topics import ALL_TOPICS

pytestmark = pytest.mark.integration


def test_topics_exist_with_the_catalog_retention_and_partitions(resources):
    admin = resources["kafka"].admin()
    metadata = admin.list_topics(timeout=10)
    for topic in ALL_TOPICS:
        assert topic.name in metadata.topics, topic.name
        assert len(metadata.topics[topic.name].partitions) == topic.partitions
    configs = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, t.name) for t in ALL_TOPICS]
    )
    for resource, future in configs.items():
        topic = next(t for t in ALL_TOPICS if t.name == resource.name)
        assert future.result()["retention.ms"].value == str(topic.retention_ms)


@pytest.fixture(scope="module")
def topic_copies(stack, settings):
    """The catalog's topics created by the same code under a test prefix, so round trips
    leave the platform's own topics (and the running validator and archiver) alone."""
    from .ingestion_support import TopicSet

    copies = TopicSet(settings.kafka_bootstrap)
    yield copies
    copies.delete()


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_produce_and_consume_on_each_topic(resources, topic_copies, topic, unique):
    kafka = resources["kafka"]
    name = topic_copies.name(topic.name)
    key = f"{topic.key}-{unique}".encode()
    value = f"round trip on {name} {unique}".encode()
    delivered = []
    producer = kafka.producer()
    producer.produce(name, key=key, value=value, on_delivery=lambda e, m: delivered.append((e, m)))
    assert producer.flush(15) == 0
    error, message = delivered[0]
    assert error is None

    consumer = kafka.consumer(group_id=f"test-{unique}")
    consumer.assign([TopicPartition(name, message.partition(), message.offset())])
    deadline = time.monotonic() + 20
    received = None
    while received is None and time.monotonic() < deadline:
        polled = consumer.poll(1)
        if polled is not None and polled.error() is None:
            received = polled
    consumer.close()
    assert received is not None, f"nothing came back from {name}"
    assert (received.key(), received.value()) == (key, value)


def test_a_batch_comes_back_with_the_first_message_without_waiting_to_fill(
    resources, topic_copies, unique
):
    """consume_ready's batch of up to 1,000 returns the 3 messages there are, at once: the
    client's consume(1000, timeout) would hold them until the timeout (the latency it adds
    to the validator's and scorer's every message when traffic is light)."""
    kafka = resources["kafka"]
    name = topic_copies.name("transactions-raw")  # the round trip test left one message
    producer = kafka.producer()
    for i in range(3):
        producer.produce(name, key=b"k", value=f"{unique}-{i}".encode())
    assert producer.flush(15) == 0
    consumer = kafka.consumer(group_id=f"test-{unique}")
    consumer.subscribe([name])
    try:
        got: list = []
        began = time.monotonic()
        while len(got) < 3 and time.monotonic() - began < 30:
            batch = consume_ready(consumer, 1000, timeout=30)
            got += [m for m in batch if m.error() is None and m.value().startswith(unique.encode())]
        waited = time.monotonic() - began
    finally:
        consumer.close()
    assert [m.value() for m in got] == [f"{unique}-{i}".encode() for i in range(3)]
    assert waited < 15, f"held {waited:.1f} s of a 30 s timeout"
