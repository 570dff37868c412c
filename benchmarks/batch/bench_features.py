"""The feature stage on Spark next to the same feature SQL on DuckDB, then XGBoost training.

    uv run python benchmarks/batch/bench_features.py [--rows 10000000] [--days 100]

Generates processed transactions (the feature stage's input: users with a home, merchants with
a category and risk tier, daily and weekly rhythm, some declines, device switches and fraud
labels completed 1-30 days later), writes them to Parquet once, then runs the catalog's
generated SQL (`fraud_platform.features.sql`) on Spark (local, all cores, the platform's
session) and on DuckDB, each reading that Parquet and writing its features to Parquet.
Prints both times and their ratio, checks both engines wrote the same rows, then times
XGBoost on a training set of the features (the platform's `train`, time-ordered split).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console

from fraud_platform.features.catalog import DAY_MS
from fraud_platform.features.sql import compute_features, feature_sql

console = Console()
START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def generate(
    rows: int, days: int, users: int, merchants: int, seed: int = 7
) -> tuple[pa.Table, pa.Table]:
    """Processed transactions and fraud labels, vectorized (10M rows in seconds)."""
    rng = np.random.default_rng(seed)
    # Activity varies by user (lognormal weights, the busiest ~20x the median), not by orders
    # of magnitude: a card is not a merchant.
    weights = rng.lognormal(0, 0.8, users)
    user = rng.choice(users, rows, p=weights / weights.sum())
    merchant = rng.integers(0, merchants, rows)
    day = rng.integers(0, days, rows)
    # Daytime-heavy hours: a mixture peaking around 13:00 UTC.
    hour = np.clip(rng.normal(13, 4, rows), 0, 23.999)
    ts = (
        START_MS
        + day * DAY_MS
        + (hour * 3_600_000).astype(np.int64)
        + rng.integers(0, 60_000, rows)
    )
    home_lat = 35 + (np.arange(users) * 7919 % 2000) / 100
    home_lon = -10 + (np.arange(users) * 104729 % 4000) / 100
    travel = rng.random(rows) < 0.05
    lat = home_lat[user] + np.where(travel, rng.normal(0, 8, rows), rng.normal(0, 0.05, rows))
    lon = home_lon[user] + np.where(travel, rng.normal(0, 8, rows), rng.normal(0, 0.05, rows))
    fraud = rng.random(rows) < 0.006
    amount = np.round(rng.lognormal(3.5, 1.0, rows) * np.where(fraud, 4, 1), 2)
    device = np.where(rng.random(rows) < 0.03, rng.integers(0, 1000, rows), user % 997)
    categories = np.array(["grocery", "fuel", "restaurant", "online_retail", "travel", "atm"])
    tiers = np.array(["low", "medium", "high"])
    ids = np.char.add("t", np.arange(rows).astype(str))
    transactions = pa.table(
        {
            "transaction_id": ids,
            "user_id": np.char.add("u", user.astype(str)),
            "merchant_id": np.char.add("m", merchant.astype(str)),
            "amount": amount,
            "ts_ms": ts,
            "timestamp": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "lat": lat,
            "lon": lon,
            "country": np.where(travel, "DE", "FR"),
            "device_id": np.char.add("d", device.astype(str)),
            "channel": np.where(rng.random(rows) < 0.4, "online", "card_present"),
            "declined": rng.random(rows) < 0.02,
            "home_lat": home_lat[user],
            "home_lon": home_lon[user],
            "merchant_category": categories[merchant % len(categories)],
            "merchant_risk_tier": tiers[merchant % len(tiers)],
        }
    )
    labelled = np.flatnonzero(fraud | (rng.random(rows) < 0.01))
    labels = pa.table(
        {
            "transaction_id": ids[labelled],
            "is_fraud": fraud[labelled],
            "complete_ms": ts[labelled] + rng.integers(1, 31, len(labelled)) * DAY_MS,
        }
    )
    return transactions, labels


def on_spark(inputs: Path, out: Path) -> float:
    from fraud_platform.spark import get_spark, stop_spark

    conf = {"spark.sql.shuffle.partitions": "8", "spark.driver.memory": "8g"}
    spark = get_spark("local[*]", {**conf, "spark.ui.showConsoleProgress": "false"})
    started = time.perf_counter()
    transactions = spark.read.parquet(str(inputs / "transactions.parquet"))
    labels = spark.read.parquet(str(inputs / "labels.parquet"))
    compute_features(spark, transactions, labels).write.mode("overwrite").parquet(str(out))
    elapsed = time.perf_counter() - started
    stop_spark()
    return elapsed


def on_duckdb(inputs: Path, out: Path) -> float:
    import duckdb

    db = duckdb.connect()
    db.execute("SET preserve_insertion_order = false")
    started = time.perf_counter()
    db.execute(f"CREATE VIEW feature_transactions AS SELECT * FROM '{inputs}/transactions.parquet'")
    db.execute(f"CREATE VIEW feature_labels AS SELECT * FROM '{inputs}/labels.parquet'")
    sql = feature_sql("feature_transactions", "feature_labels", "duckdb")
    db.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    return time.perf_counter() - started


def train_time(features: Path, labels: pa.Table, days: int) -> tuple[float, int, dict]:
    """XGBoost through the platform's `train` on the first 80% of days, scored on the rest
    (a time-ordered split). Columns go to pandas as float32 and dictionary-encoded text, the
    train and test rows separately: 10M rows fit in memory."""
    from fraud_platform.models.evaluation import evaluate
    from fraud_platform.models.training import FEATURES, predict, train

    frauds = labels.filter(labels["is_fraud"]).column("transaction_id")
    cut = START_MS + int(days * 0.8) * DAY_MS

    def split(name: str, rows: tuple):
        """One side of the split, read on its own: float32 features, dictionary-encoded text."""
        table = pq.read_table(features, columns=[*FEATURES, "transaction_id"], filters=[rows])
        label = pc.cast(pc.is_in(table["transaction_id"], value_set=frauds), pa.int8())
        table = table.drop(["transaction_id"]).append_column("label", label)
        table = table.cast(
            pa.schema(
                pa.field(f.name, pa.float32()) if pa.types.is_floating(f.type) else f
                for f in table.schema
            )
        )
        frame = table.to_pandas(strings_to_categorical=True)
        frame["split"] = name
        return frame

    training = split("train", ("ts_ms", "<", cut))
    started = time.perf_counter()
    booster, _ = train(training)
    elapsed = time.perf_counter() - started
    rows = len(training)
    del training
    test = split("test", ("ts_ms", ">=", cut))
    metrics = evaluate(test["label"].to_numpy(), predict(booster, test), 0.5)
    quality = {
        "auc_roc": round(metrics.auc_roc, 3),
        "average_precision": round(metrics.average_precision, 3),
    }
    return elapsed, rows, quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--merchants", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-features-"))
    try:
        with console.status(f"generating {args.rows:,} transactions over {args.days} days"):
            transactions, labels = generate(args.rows, args.days, args.users, args.merchants)
            pq.write_table(transactions, work / "transactions.parquet", row_group_size=1_000_000)
            pq.write_table(labels, work / "labels.parquet")
            del transactions  # the engines read the Parquet; keep the memory for XGBoost
        with console.status("feature stage on DuckDB"):
            duck = on_duckdb(work, work / "features-duckdb.parquet")
        console.print(f"DuckDB: {duck:,.1f} s")
        with (
            console.status("feature stage on Spark"),
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child,
        ):
            # In a child process: Spark's JVM outlives SparkSession.stop() and would keep
            # its heap while XGBoost needs the memory.
            spark = child.submit(on_spark, work, work / "features-spark").result()
        console.print(f"Spark:  {spark:,.1f} s")
        counts = {
            engine: pq.ParquetDataset(work / name).read(columns=["transaction_id"]).num_rows
            for engine, name in (("duckdb", "features-duckdb.parquet"), ("spark", "features-spark"))
        }
        assert counts["duckdb"] == counts["spark"] == args.rows, counts
        with console.status("XGBoost on the features"):
            fit, train_rows, metrics = train_time(
                work / "features-duckdb.parquet", labels, args.days
            )
        result = {
            "rows": args.rows,
            "spark_s": round(spark, 1),
            "duckdb_s": round(duck, 1),
            "spark_over_duckdb": round(spark / duck, 2),
            "xgboost_train_s": round(fit, 1),
            "xgboost_train_rows": train_rows,
            **metrics,
        }
        console.print(
            f"feature stage, {args.rows:,} rows: Spark {spark:,.1f} s, DuckDB {duck:,.1f} s, "
            f"ratio {spark / duck:.2f}\nXGBoost: {fit:,.1f} s on {train_rows:,} rows"
        )
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
