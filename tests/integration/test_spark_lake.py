"""The shared local SparkSession writes and reads Hive-partitioned Parquet in the lake."""

import pyarrow.dataset as ds
import pytest

from fraud_platform.resources import LakeResource

pytestmark = pytest.mark.integration


def test_spark_round_trips_partitioned_parquet_in_the_lake(spark, tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    rows = [
        (f"txn_{i}", f"user_{i % 7}", float(i) * 1.5, f"2024-12-{12 + i % 2}") for i in range(50)
    ]
    frame = spark.createDataFrame(
        rows, "transaction_id string, user_id string, amount double, date string"
    )
    target = lake.uri("raw", "transactions")
    frame.write.mode("overwrite").partitionBy("date").parquet(target)

    assert sorted(p.name for p in (tmp_path / "lake" / "raw" / "transactions").glob("date=*")) == [
        "date=2024-12-12",
        "date=2024-12-13",
    ]
    back = spark.read.parquet(target)
    assert back.count() == 50
    assert back.where("date = '2024-12-13'").count() == 25
    assert round(back.agg({"amount": "sum"}).first()[0], 2) == round(sum(r[2] for r in rows), 2)

    filesystem, base = lake.filesystem()
    table = ds.dataset(
        f"{base}/raw/transactions", filesystem=filesystem, partitioning="hive"
    ).to_table()
    assert table.num_rows == 50


def test_the_session_is_shared(spark):
    from fraud_platform.spark import get_spark

    assert get_spark() is spark
