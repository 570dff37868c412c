"""The Flink session cluster runs, and a SQL job submitted through the stack completes."""

import time

import pytest
from confluent_kafka.admin import NewTopic

from fraud_platform.stack.flink import submit_sql, wait_for_job

pytestmark = pytest.mark.integration


def test_rest_api_reports_a_running_task_manager(resources):
    flink = resources["flink"]
    overview = flink.overview()
    assert overview["taskmanagers"] >= 1
    assert overview["slots-total"] >= 1
    (manager, *_) = flink.get("/taskmanagers")["taskmanagers"]
    assert manager["slotsNumber"] >= 1


def test_sql_job_writes_through_the_kafka_connector(settings, resources, unique):
    topic = f"test-flink-sql-{unique}"
    kafka = resources["kafka"]
    admin = kafka.admin()
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    sql = f"""
        CREATE TABLE numbers (n BIGINT) WITH (
          'connector' = 'datagen', 'number-of-rows' = '100',
          'fields.n.kind' = 'sequence', 'fields.n.start' = '1', 'fields.n.end' = '100');
        CREATE TABLE sink (n BIGINT) WITH (
          'connector' = 'kafka', 'topic' = '{topic}',
          'properties.bootstrap.servers' = '{settings.kafka_bootstrap}', 'format' = 'json');
        INSERT INTO sink SELECT n FROM numbers;
    """
    job_id = submit_sql(settings, sql)
    assert wait_for_job(settings, job_id, {"FINISHED", "FAILED"}, timeout=120) == "FINISHED"

    consumer = kafka.consumer(group_id=f"test-{unique}")
    consumer.subscribe([topic])
    seen: set[bytes] = set()
    deadline = time.monotonic() + 30
    while len(seen) < 100 and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            seen.add(message.value())
    consumer.close()
    admin.delete_topics([topic])
    assert seen == {f'{{"n":{n}}}'.encode() for n in range(1, 101)}
