"""One real stack (Redis, Kafka, Flink, Dagster) for the whole test session.

Services already running (a developer's `stack up`) are reused and left running; services the
session started are stopped at the end, so CI leaves nothing behind.
"""

from __future__ import annotations

import uuid

import pytest

# The function, taken before any call: once called, `fakesnow.server` names its module.
from fakesnow import server as fakesnow_server

from fraud_platform.config import Settings
from fraud_platform.resources import WarehouseResource, build_resources
from fraud_platform.spark import get_spark, stop_spark
from fraud_platform.stack.manager import Stack
from fraud_platform.warehouse.schema import create_tables

from ..conftest import free_port
from .ingestion_support import TopicSet


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def stack(settings: Settings):
    the_stack = Stack(settings)
    results = the_stack.up()
    started = [r.name for r in results if r.action == "started"]
    yield the_stack
    if started:
        the_stack.down(started)


@pytest.fixture(scope="session")
def resources(stack, settings):
    return build_resources(settings)


@pytest.fixture(scope="session")
def spark():
    """The process's one SparkSession, as the Spark assets use it."""
    session = get_spark("local[2]", {"spark.sql.shuffle.partitions": "4"})
    yield session
    stop_spark()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def topics(stack, settings) -> TopicSet:
    """The catalog's topics under a fresh prefix, deleted after the test."""
    topic_set = TopicSet(settings.kafka_bootstrap)
    yield topic_set
    topic_set.delete()


@pytest.fixture(scope="session")
def snowflake_warehouse() -> WarehouseResource:
    """One fakesnow server for the session, as the platform's Snowflake warehouse (reached
    by the real connector through dagster-snowflake), its FRAUD.ANALYTICS schema created."""
    with fakesnow_server() as conn:
        warehouse = WarehouseResource(
            backend="snowflake",
            snowflake_account=conn["account"],
            snowflake_user=conn["user"],
            snowflake_password=conn["password"],
            snowflake_connection_args={
                k: conn[k] for k in ("host", "port", "protocol", "session_parameters")
            },
        )
        with warehouse.connect() as connection:
            cursor = connection.cursor()
            cursor.execute("CREATE DATABASE IF NOT EXISTS fraud")
            cursor.execute("CREATE SCHEMA IF NOT EXISTS fraud.analytics")
        yield warehouse


@pytest.fixture(params=["duckdb", "snowflake"])
def warehouse(request, tmp_path):
    """(connection, backend) with the star schema created, empty: a DuckDB file, and a fresh
    schema on the session's fakesnow server."""
    if request.param == "duckdb":
        resource = WarehouseResource(duckdb_path=str(tmp_path / "warehouse.duckdb"))
        with resource.connect() as connection:
            create_tables(connection)
            yield connection, "duckdb"
        return
    with request.getfixturevalue("snowflake_warehouse").connect() as connection:
        cursor = connection.cursor()
        schema = f"fraud.t{uuid.uuid4().hex[:8]}"
        cursor.execute(f"CREATE SCHEMA {schema}")
        cursor.execute(f"USE SCHEMA {schema}")
        create_tables(connection)
        yield connection, "snowflake"


@pytest.fixture(scope="session")
def s3_endpoint():
    """One moto S3 server for the session, reached over HTTP by the real clients (boto3,
    pyarrow's S3 filesystem, Hadoop S3A in Spark). One endpoint, because Hadoop caches a
    bucket's filesystem for the life of the JVM."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
        server.start()
        yield f"http://127.0.0.1:{port}"
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, unique) -> str:
    """A fresh bucket on the moto server."""
    import boto3

    name = f"fraud-lake-{unique}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name
