"""The lake on S3 and the warehouse on Snowflake, by configuration alone.

S3 is a moto server and Snowflake a fakesnow server, each reached over HTTP by the real
clients (pyarrow's S3 filesystem, the Snowflake connector through dagster-snowflake).
"""

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from fraud_platform.config import Settings
from fraud_platform.resources import LakeResource, build_resources

pytestmark = pytest.mark.integration


def test_lake_reads_and_writes_parquet_on_s3(s3_endpoint, s3_bucket, tmp_path):
    import boto3

    settings = Settings(
        home=tmp_path, lake_root=f"s3://{s3_bucket}/prod", s3_endpoint_url=s3_endpoint
    )
    resources = build_resources(settings)
    lake = resources["lake"]
    assert isinstance(lake, LakeResource) and lake.is_s3
    buckets = resources["s3"].get_client().list_buckets()["Buckets"]  # dagster-aws's client
    assert s3_bucket in {b["Name"] for b in buckets}
    assert lake.uri("raw", "transactions") == f"s3a://{s3_bucket}/prod/raw/transactions"

    filesystem, base = lake.filesystem()
    table = pa.table({"transaction_id": ["txn_1", "txn_2"], "amount": [127.5, 9.99]})
    ds.write_dataset(
        table, f"{base}/raw/transactions/date=2024-12-12", filesystem=filesystem, format="parquet"
    )
    back = ds.dataset(f"{base}/raw/transactions", filesystem=filesystem, partitioning="hive")
    assert back.to_table().num_rows == 2
    objects = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").list_objects_v2(
        Bucket=s3_bucket
    )["Contents"]
    parquet = [o["Key"] for o in objects if o["Key"].endswith(".parquet")]
    assert parquet == ["prod/raw/transactions/date=2024-12-12/part-0.parquet"]


def test_warehouse_on_snowflake_through_dagster_snowflake(snowflake_warehouse):
    with snowflake_warehouse.connect() as connection:
        cursor = connection.cursor()
        cursor.execute("create table fraud.analytics.probe (id int, amount float)")
        cursor.execute("insert into fraud.analytics.probe values (1, 127.5), (2, 9.99)")
        cursor.execute("select count(*), sum(amount) from fraud.analytics.probe")
        assert cursor.fetchone() == (2, pytest.approx(137.49))


def test_snowflake_backend_takes_its_secrets_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "acme")
    monkeypatch.setenv("SNOWFLAKE_USER", "loader")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "s3cret")
    warehouse = build_resources(Settings(home=tmp_path, warehouse_backend="snowflake"))["warehouse"]
    assert warehouse.backend == "snowflake"
    assert "s3cret" not in repr(warehouse.model_dump())  # an EnvVar, not the value in code
