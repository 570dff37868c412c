"""Dagster resources for every external system, configured from the environment.

Each is a ConfigurableResource so the Dagster UI shows its configuration; `build_resources`
fills them from `Settings` (local-stack defaults) and takes secrets as EnvVar, never as code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from pydantic import Field

from fraud_platform.config import Settings


class KafkaResource(dg.ConfigurableResource):
    """Kafka clients with the platform's defaults (idempotent producer, manual commits)."""

    bootstrap_servers: str
    client_id: str = "fraud-platform"

    def _base(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap_servers, "client.id": self.client_id}

    def producer(self, **overrides: Any):
        from confluent_kafka import Producer

        return Producer({**self._base(), "enable.idempotence": True, "acks": "all", **overrides})

    def consumer(self, group_id: str, **overrides: Any):
        from confluent_kafka import Consumer

        return Consumer(
            {
                **self._base(),
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                **overrides,
            }
        )

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient(self._base())


class RedisResource(dg.ConfigurableResource):
    """The online feature store."""

    url: str

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)


class FlinkResource(dg.ConfigurableResource):
    """The Flink session cluster's REST API."""

    rest_url: str

    def get(self, path: str) -> dict[str, Any]:
        import httpx

        response = httpx.get(f"{self.rest_url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def overview(self) -> dict[str, Any]:
        return self.get("/overview")


class LakeResource(dg.ConfigurableResource):
    """The Parquet lake: a local folder, or `s3://bucket/prefix` (endpoint configurable)."""

    root: str
    s3_endpoint_url: str = ""
    aws_region: str = "us-east-1"
    docs_url: str = ""  # where a local lake's analytics/ is served over HTTP (stack docs)

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def filesystem(self):
        """A pyarrow filesystem and the root path inside it."""
        from pyarrow import fs

        if not self.is_s3:
            os.makedirs(self.root, exist_ok=True)
            return fs.LocalFileSystem(), os.path.abspath(self.root)
        s3 = fs.S3FileSystem(
            endpoint_override=self.s3_endpoint_url or None,
            region=self.aws_region,
            scheme="http" if self.s3_endpoint_url.startswith("http://") else "https",
        )
        return s3, self.root.removeprefix("s3://").rstrip("/")

    def path(self, *parts: str) -> str:
        """A path inside the lake, for pyarrow (no scheme) on the lake's filesystem."""
        _, base = self.filesystem()
        return "/".join([base, *parts])

    def link(self, path: str) -> dict[str, dg.MetadataValue]:
        """A browser link to a report under analytics/, as metadata; none for a lake on S3
        or without the docs service, where the path is all there is."""
        folder = "analytics/"
        if self.is_s3 or not self.docs_url or not path.startswith(folder):
            return {}
        return {"open": dg.MetadataValue.url(f"{self.docs_url}/{path.removeprefix(folder)}")}

    def uri(self, *parts: str) -> str:
        """A URI inside the lake, for Spark (`s3a://` on S3, a plain path locally)."""
        if self.is_s3:
            return "s3a://" + "/".join([self.root.removeprefix("s3://").rstrip("/"), *parts])
        return os.path.join(os.path.abspath(self.root), *parts)


class SparkResource(dg.ConfigurableResource):
    """Spark, local mode by default; a master URL (spark://, yarn, k8s://) by configuration."""

    master: str = "local[2]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 8
    s3_endpoint_url: str = ""  # the lake's S3 endpoint, when it lives on S3
    aws_region: str = "us-east-1"

    def session(self):
        """The process's one SparkSession, built on first use."""
        from fraud_platform.spark import get_spark, s3a_conf

        return get_spark(
            self.master,
            {
                "spark.driver.memory": self.driver_memory,
                "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            },
            hadoop_conf=s3a_conf(self.s3_endpoint_url, self.aws_region),
        )


class FeaturesResource(dg.ConfigurableResource):
    """How the catalog's features are computed: the label delay its label-based windows are
    shifted back by (the days fraud labels take to arrive)."""

    label_delay_days: int = 7


class WarehouseResource(dg.ConfigurableResource):
    """The star-schema warehouse: an embedded DuckDB file, or Snowflake by configuration.

    Snowflake goes through dagster-snowflake's resource; its account, user and password come
    from SNOWFLAKE_* environment variables. `snowflake_connection_args` carries extra
    connector arguments (e.g. host/port/protocol of a fakesnow server in tests).
    """

    backend: str = "duckdb"
    duckdb_path: str = ""
    snowflake_account: str = ""
    snowflake_user: str = ""
    snowflake_password: str = ""
    snowflake_database: str = "FRAUD"
    snowflake_schema: str = "ANALYTICS"
    snowflake_warehouse: str = "FRAUD_WH"
    snowflake_connection_args: dict[str, Any] = Field(default_factory=dict)
    holiday_country: str = "US"  # whose public holidays the date dimension marks

    @property
    def analyst_duckdb_path(self) -> str:
        """The analyst's database: the aggregated tables only (see governance/rbac.py)."""
        root, _ = os.path.splitext(self.duckdb_path)
        return f"{root}.analyst.duckdb"

    @contextmanager
    def connect(self, role: str | None = None) -> Iterator[Any]:
        """A DB-API connection to the configured backend as the acting role, or `role` when
        that needs no more rights (an engineer reading as the analyst; never the reverse),
        audited, closed on exit. A role that may read aggregates only (the analyst) gets the
        analyst's database read-only on DuckDB, and its Snowflake role on Snowflake."""
        from fraud_platform.governance import audit
        from fraud_platform.governance.rbac import AccessDenied, Actor, aggregates_only, within

        actor = Actor.current()
        role = role or actor.role
        if not within(role, actor.role):
            audit.record("warehouse.connect", role, {"role": role}, actor=actor, outcome="denied")
            raise AccessDenied(f"{actor.user} ({actor.role}) may not connect as {role}")
        restricted = aggregates_only(role)
        if self.backend == "duckdb":
            path = self.analyst_duckdb_path if restricted else self.duckdb_path
            audit.record("warehouse.connect", f"duckdb:{path}", {"role": role}, actor=actor)
            yield from self._duckdb(path, read_only=restricted)
            return
        from dagster_snowflake import SnowflakeResource

        database = f"snowflake:{self.snowflake_database}.{self.snowflake_schema}"
        audit.record("warehouse.connect", database, {"role": role}, actor=actor)
        snowflake = SnowflakeResource(
            account=self.snowflake_account,
            user=self.snowflake_user,
            password=self.snowflake_password,
            database=self.snowflake_database,
            schema=self.snowflake_schema,
            warehouse=self.snowflake_warehouse,
            role=f"FRAUD_{role.upper()}" if restricted else None,
            additional_snowflake_connection_args=self.snowflake_connection_args or None,
        )
        with snowflake.get_connection() as connection:
            yield connection

    @staticmethod
    def _duckdb(path: str, read_only: bool) -> Iterator[Any]:
        import duckdb

        if read_only and not os.path.exists(path):
            raise FileNotFoundError(
                f"{path} does not exist yet: materialize warehouse/daily_business_metrics, "
                "which publishes the aggregated tables analysts read"
            )
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # Read-only alone would still let a query ATTACH the full database or read the lake's
        # files; the analyst's connection has no file access at all, and cannot turn it on.
        sealed = {"enable_external_access": False, "lock_configuration": True}
        connection = duckdb.connect(path, read_only=read_only, config=sealed if read_only else {})
        try:
            yield connection
        finally:
            connection.close()


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    settings = settings or Settings.from_env()
    warehouse: dict[str, Any] = {"backend": settings.warehouse_backend}
    if settings.warehouse_backend == "snowflake":
        warehouse.update(
            snowflake_account=dg.EnvVar("SNOWFLAKE_ACCOUNT"),
            snowflake_user=dg.EnvVar("SNOWFLAKE_USER"),
            snowflake_password=dg.EnvVar("SNOWFLAKE_PASSWORD"),
        )
    else:
        warehouse["duckdb_path"] = settings.duckdb_path
    from dagster_aws.s3 import S3Resource

    return {
        "kafka": KafkaResource(bootstrap_servers=settings.kafka_bootstrap),
        "redis": RedisResource(url=settings.redis_url),
        "flink": FlinkResource(rest_url=settings.flink_rest_url),
        "lake": LakeResource(
            root=settings.lake_root,
            s3_endpoint_url=settings.s3_endpoint_url,
            docs_url=settings.docs_url,
        ),
        "spark": SparkResource(
            master=settings.spark_master, s3_endpoint_url=settings.s3_endpoint_url
        ),
        "warehouse": WarehouseResource(**warehouse),
        "features": FeaturesResource(label_delay_days=settings.label_delay_days),
        "s3": S3Resource(endpoint_url=settings.s3_endpoint_url or None),
    }
