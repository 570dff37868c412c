"""The platform's model against the Fraud Detection Handbook's baseline, on its own protocol.

    uv run python benchmarks/model/handbook.py [--no-search] [--no-simulator]

1. Imports ../shared/data/handbook/handbook_transactions.parquet into a throwaway home and runs
   the single-split protocol through the platform, as a user would:
   `fraud-platform train --train-start 2018-07-25 --train-days 7 --delay-days 7 --test-days 7
   --search` (training 2018-07-25..31, delay 08-01..07, test 08-08..14, cards known to be
   compromised removed from each test day).
2. In the same run, the Handbook's baseline (chapter 3): its 15 features computed with pandas
   as its notebooks do (amount, weekend, night; the customer's count and mean amount over 1,
   7 and 30 days; the terminal's count and fraud risk over 1, 7 and 30 days shifted back by
   the 7-day delay), a default XGBoost trained on the same training week and scored on the
   platform's test rows. Both are judged by the same code on the same rows, whose labels are
   checked to agree.
3. What each group of the platform's new features adds: the platform's model retrained on its
   own training set without the group, on the same test rows.
4. The same comparison on the simulator's data (`fraud-platform simulate history`), where the
   baseline is given every label after the delay (the Handbook's assumption) while the
   platform only knows the labels completed by each transaction's time.

Figures go to benchmarks/results/model_handbook.json and model_handbook.png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
from rich.console import Console
from rich.table import Table

from fraud_platform.config import PROJECT_ROOT
from fraud_platform.models.evaluation import evaluate
from fraud_platform.models.training import Hyperparameters, load_training_set, predict, train
from fraud_platform.resources import LakeResource

HANDBOOK = PROJECT_ROOT.parent / "shared" / "data" / "handbook" / "handbook_transactions.parquet"
RESULTS = Path(__file__).resolve().parents[1] / "results"
console = Console()
# The platform's features this work added, by what they capture.
NEW_FEATURE_GROUPS = {
    "merchant risk (label-delayed)": [
        *(
            f"merchant_{kind}_{w}"
            for kind in ("delayed_volume", "fraud_count", "fraud_risk")
            for w in ("24h", "7d", "30d")
        ),
    ],
    "merchant fraud recency": [
        "seconds_since_merchant_first_fraud",
        "seconds_since_merchant_last_fraud",
    ],
    "card's confirmed frauds": ["user_fraud_count_30d"],
    "amount against the card's history": [
        "user_std_amount_90d",
        "amount_zscore_90d",
        "amount_to_user_avg_90d",
        "amount_to_user_max_30d",
    ],
    "card at this merchant": ["user_merchant_count_30d", "user_merchant_count_90d"],
}


def platform(home: Path, *args: str) -> float:
    """Run `fraud-platform ARGS` as a user would, in `home`; returns its seconds."""
    env = {**os.environ, "FRAUD_PLATFORM_HOME": str(home), "FRAUD_ROLE": "data_engineer"}
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fraud_platform.cli", *args], env=env, cwd=PROJECT_ROOT
    )
    if done.returncode:
        raise SystemExit(f"fraud-platform {' '.join(args)} failed ({done.returncode})")
    return time.monotonic() - began


def platform_scores(home: Path, as_of: str) -> tuple[pd.DataFrame, dict]:
    """The candidate's test rows and scores, and its metadata, from the throwaway lake."""
    from fraud_platform.models import registry

    lake = LakeResource(root=str(home / "lake"))
    version = registry.latest_candidate(lake, as_of)
    scores = registry.evaluation_frame(lake, as_of, registry.SCORES_FILE)
    return scores, registry.load_metadata(lake, version)


# -- the Handbook's baseline, as its notebooks compute it ---------------------------------------


def _rolling(frame: pd.DataFrame, key: str, column: str, days: int, how: str) -> pd.Series:
    ordered = frame.sort_values([key, "TX_DATETIME"], kind="stable")
    rolled = ordered.groupby(key).rolling(f"{days}d", on="TX_DATETIME")[column]
    return pd.Series(getattr(rolled, how)().to_numpy(), index=ordered.index)


def handbook_features(frame: pd.DataFrame, delay: int = 7) -> tuple[pd.DataFrame, list[str]]:
    """The 15 features of the Handbook's chapter 3.3 (its rolling windows include the
    transaction itself; the terminal's risk is shifted back by the delay)."""
    out = frame.copy()
    out["TX_DURING_WEEKEND"] = (out["TX_DATETIME"].dt.weekday >= 5).astype(int)
    out["TX_DURING_NIGHT"] = (out["TX_DATETIME"].dt.hour <= 6).astype(int)
    names = ["TX_AMOUNT", "TX_DURING_WEEKEND", "TX_DURING_NIGHT"]
    for w in (1, 7, 30):
        count = _rolling(out, "CUSTOMER_ID", "TX_AMOUNT", w, "count")
        total = _rolling(out, "CUSTOMER_ID", "TX_AMOUNT", w, "sum")
        out[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = count
        out[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = total / count
        names += [f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW", f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"]
    frauds_delay = _rolling(out, "TERMINAL_ID", "TX_FRAUD", delay, "sum")
    count_delay = _rolling(out, "TERMINAL_ID", "TX_FRAUD", delay, "count")
    for w in (1, 7, 30):
        frauds = _rolling(out, "TERMINAL_ID", "TX_FRAUD", delay + w, "sum") - frauds_delay
        count = _rolling(out, "TERMINAL_ID", "TX_FRAUD", delay + w, "count") - count_delay
        out[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = count
        out[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = (frauds / count).fillna(0)
        names += [f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW", f"TERMINAL_ID_RISK_{w}DAY_WINDOW"]
    return out, names


def baseline_scores(frame: pd.DataFrame, train_days: list[str], test_ids: pd.Series) -> np.ndarray:
    """A default XGBoost (the Handbook's baseline classifier) on the 15 features."""
    import xgboost as xgb

    features, names = handbook_features(frame)
    day = features["TX_DATETIME"].dt.strftime("%Y-%m-%d")
    training = features[day.isin(train_days)]
    model = xgb.XGBClassifier(random_state=0, n_jobs=2).fit(training[names], training["TX_FRAUD"])
    test = features.set_index("transaction_id").loc[test_ids]
    return model.predict_proba(test[names])[:, 1]


def judged(scored: pd.DataFrame, column: str) -> dict:
    m = evaluate(
        scored["label"].to_numpy(),
        scored[column].to_numpy(),
        0.5,
        scored["date"].astype(str).to_numpy(),
        scored["user_id"].to_numpy(),
    )
    return {
        "auc_roc": m.auc_roc,
        "average_precision": m.average_precision,
        "card_precision_at_100": m.card_precision_at_k,
    }


def compare(scored: pd.DataFrame, source: pd.DataFrame, train_days: list[str]) -> dict:
    """Platform and baseline on the platform's test rows; the labels must agree."""
    baseline = baseline_scores(source, train_days, scored["transaction_id"])
    truth = source.set_index("transaction_id").loc[scored["transaction_id"], "TX_FRAUD"]
    disagree = int((truth.to_numpy() != scored["label"].to_numpy()).sum())
    if disagree:
        raise SystemExit(f"{disagree} test labels differ between the platform and the source")
    scored = scored.assign(baseline=baseline)
    return {"platform": judged(scored, "score"), "baseline": judged(scored, "baseline")}


def ablation(home: Path, as_of: str, chosen: dict, scored: pd.DataFrame) -> dict:
    """The platform's model without each new feature group, on the same test rows."""
    frame = load_training_set(LakeResource(root=str(home / "lake")), as_of)
    test = frame[frame["split"] == "test"].set_index("transaction_id").loc[scored["transaction_id"]]
    test = test.reset_index()
    out = {}
    for group, names in {"all features": [], **NEW_FEATURE_GROUPS}.items():
        booster, _ = train(frame.drop(columns=names), Hyperparameters(**chosen))
        out[group] = judged(test.assign(score=predict(booster, test.drop(columns=names))), "score")
    return out


# -- the two datasets ------------------------------------------------------------------------


def handbook_source() -> pd.DataFrame:
    frame = pd.read_parquet(HANDBOOK)
    frame["transaction_id"] = "hb-" + frame["TRANSACTION_ID"].astype(str)
    return frame.sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)


def run_handbook(root: Path, search: bool) -> dict:
    home = root / "handbook"
    seconds = {"import": platform(home, "import", str(HANDBOOK))}
    train_args = [
        "--train-start",
        "2018-07-25",
        "--train-days",
        "7",
        "--delay-days",
        "7",
        "--test-days",
        "7",
    ] + (["--search"] if search else [])
    seconds["train"] = platform(home, "train", *train_args)
    scored, metadata = platform_scores(home, "2018-08-21")
    began = time.monotonic()
    result = compare(scored, handbook_source(), metadata["training_partitions"])
    seconds["baseline"] = time.monotonic() - began
    result["ablation"] = ablation(home, "2018-08-21", metadata["hyperparameters"], scored)
    return {
        **result,
        "hyperparameters": metadata["hyperparameters"],
        "seconds": seconds,
        "test_rows": len(scored),
        "test_frauds": int(scored["label"].sum()),
    }


def simulator_source(home: Path) -> pd.DataFrame:
    """The simulated lake's transactions in the Handbook's columns, TX_FRAUD = any fraud label."""
    lake = home / "lake"
    raw = ds.dataset(lake / "raw/transactions", format="parquet", partitioning="hive")
    frame = raw.to_table(
        columns=["transaction_id", "user_id", "merchant_id", "amount", "timestamp"]
    ).to_pandas()
    labels = (
        ds.dataset(lake / "labels/fraud_investigations", format="parquet", partitioning="hive")
        .to_table()
        .to_pandas()
    )
    frauds = set(labels.loc[labels["is_fraud"], "transaction_id"])
    frame = frame.drop_duplicates("transaction_id").rename(
        columns={"user_id": "CUSTOMER_ID", "merchant_id": "TERMINAL_ID", "amount": "TX_AMOUNT"}
    )
    frame["TX_DATETIME"] = frame.pop("timestamp").dt.tz_localize(None)
    frame["TX_FRAUD"] = frame["transaction_id"].isin(frauds).astype(int)
    return frame.sort_values("TX_DATETIME", kind="stable").reset_index(drop=True)


def run_simulator(root: Path, search: bool) -> dict:
    home = root / "simulator"
    seconds = {
        "simulate": platform(
            home,
            "simulate",
            "history",
            "--days",
            "100",
            "--volume",
            "10000",
            "--users",
            "2000",
            "--merchants",
            "1000",
            "--end",
            "2025-06-01",
        )
    }
    # 100 days end on 2025-05-31; the as-of day is the last, 21 + 7 + 7 + 7 days after the start.
    train_args = [
        "--train-start",
        "2025-04-20",
        "--train-days",
        "21",
        "--delay-days",
        "7",
        "--test-days",
        "7",
    ] + (["--search"] if search else [])
    seconds["train"] = platform(home, "train", *train_args)
    scored, metadata = platform_scores(home, "2025-05-31")
    source = simulator_source(home)
    began = time.monotonic()
    result = compare(scored, source, metadata["training_partitions"])
    seconds["baseline"] = time.monotonic() - began
    return {
        **result,
        "hyperparameters": metadata["hyperparameters"],
        "seconds": seconds,
        "test_rows": len(scored),
        "test_frauds": int(scored["label"].sum()),
    }


def print_report(results: dict) -> None:
    table = Table("data", "model", "AUC-ROC", "average precision", "card precision@100")
    for data, result in results.items():
        if data == "peak_rss_mb":
            continue
        for model in ("platform", "baseline"):
            m = result[model]
            table.add_row(data, model, *(f"{m[k]:.4f}" for k in m))
    console.print(table)
    ablation = Table("handbook, without", "AUC-ROC", "average precision", "card precision@100")
    for group, m in results["handbook"]["ablation"].items():
        ablation.add_row(group, *(f"{m[k]:.4f}" for k in m))
    console.print(ablation)


def plot(results: dict, path: Path) -> None:
    from fraud_platform.plots import figure

    datasets = [d for d in results if d != "peak_rss_mb"]
    metrics = ["auc_roc", "average_precision", "card_precision_at_100"]
    with figure(8, 3.2) as (axis, out):
        for i, (data, model) in enumerate(
            (d, m) for d in datasets for m in ("platform", "baseline")
        ):
            values = [results[data][model][k] for k in metrics]
            axis.bar(np.arange(3) + i * 0.2, values, width=0.2, label=f"{data}: {model}")
        axis.set_xticks(np.arange(3) + 0.1 * (2 * len(datasets) - 1), metrics)
        axis.set(ylim=(0, 1), title="Fraud Detection Handbook protocol (test period)")
        axis.legend(loc="upper right", fontsize=7)
    path.write_bytes(out["png"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-search", action="store_true", help="use the default parameters")
    parser.add_argument("--no-simulator", action="store_true", help="the handbook only")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="fraud-model-bench-") as root:
        results["handbook"] = run_handbook(Path(root), not args.no_search)
        if not args.no_simulator:
            results["simulator"] = run_simulator(Path(root), not args.no_search)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print_report(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "model_handbook.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / "model_handbook.png")
    console.print(f"written: {RESULTS / 'model_handbook.json'}, {RESULTS / 'model_handbook.png'}")


if __name__ == "__main__":
    main()
