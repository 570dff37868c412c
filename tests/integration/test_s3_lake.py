"""The whole lake on S3 (a moto server): Spark assets, the archiver and the lifecycle rules
work against `s3://bucket/prefix` with the real clients, as they do against a folder."""

from datetime import date

import boto3
import dagster as dg
import pytest

from assets.processed import processed_transactions
from assets.raw import raw_labels, raw_transactions
from fraud_platform.contracts import TRANSACTION
from fraud_platform.governance.retention import apply_lifecycle, lifecycle_rules
from fraud_platform.ingestion.archiver import ROUTES, Archiver
from fraud_platform.lake import PROCESSED_TRANSACTIONS_PATH, RAW_TRANSACTIONS, dataset
from fraud_platform.resources import LakeResource, SparkResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world

from .ingestion_support import transaction

pytestmark = pytest.mark.integration
DAYS = ["2025-06-02", "2025-06-03"]


def keys(endpoint: str, bucket: str, prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_spark_assets_process_a_lake_on_s3(s3_endpoint, s3_bucket, spark):
    lake = LakeResource(root=f"s3://{s3_bucket}/prod", s3_endpoint_url=s3_endpoint)
    written, _ = write_history(lake, build_world(seed=5, n_users=300, n_merchants=200), days=2,
                               volume=800, end=date(2025, 6, 4))  # fmt: skip
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [raw_transactions, raw_labels, processed_transactions],
            instance=instance,
            resources={
                "lake": lake,
                "spark": SparkResource(shuffle_partitions=4, s3_endpoint_url=s3_endpoint),
            },
            tags={
                "dagster/asset_partition_range_start": DAYS[0],
                "dagster/asset_partition_range_end": DAYS[-1],
            },
        )
    assert result.success
    processed = dataset(lake, PROCESSED_TRANSACTIONS_PATH).count_rows()
    assert processed == dataset(lake, RAW_TRANSACTIONS.path).count_rows() == written
    parquet = keys(s3_endpoint, s3_bucket, f"prod/{PROCESSED_TRANSACTIONS_PATH}/")
    assert {k.split("/")[3] for k in parquet if k.endswith(".parquet")} == {
        f"date={d}" for d in DAYS
    }


def test_archiver_lands_kafka_records_in_an_s3_lake(settings, topics, s3_endpoint, s3_bucket):
    lake = LakeResource(root=f"s3://{s3_bucket}/prod", s3_endpoint_url=s3_endpoint)
    records = [transaction(i, 1_748_800_000_000 + i * 1000, topics.prefix) for i in range(500)]
    topics.produce("transactions-raw", [(b"k", TRANSACTION.encode(r)) for r in records])

    archiver = Archiver(ROUTES["transactions-raw"], settings.kafka_bootstrap, lake, topics.prefix)
    archiver.run(idle_exit_s=3)

    table = dataset(lake, RAW_TRANSACTIONS.path).to_table(columns=["transaction_id"])
    assert sorted(table["transaction_id"].to_pylist()) == sorted(
        r["transaction_id"] for r in records
    )
    assert keys(s3_endpoint, s3_bucket, "prod/_state/archiver/")  # progress kept in the lake


def test_lifecycle_rules_are_applied_to_the_lake_bucket(s3_endpoint, s3_bucket):
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    applied = apply_lifecycle(client, f"s3://{s3_bucket}/prod")
    rules = client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]
    assert len(rules) == len(applied) == len(lifecycle_rules("prod"))
    by_prefix = {r["Filter"]["Prefix"]: r for r in rules}
    raw = by_prefix["prod/raw/transactions/"]
    assert [(t["Days"], t["StorageClass"]) for t in raw["Transitions"]] == [
        (90, "INTELLIGENT_TIERING"),
        (365, "DEEP_ARCHIVE"),
    ]
    assert raw["Expiration"]["Days"] == 7 * 365
    assert by_prefix["prod/processed/training_sets/"]["Expiration"]["Days"] == 90
    assert by_prefix["prod/archive/models/candidates/"]["Transitions"][0]["StorageClass"] == (
        "GLACIER"
    )
