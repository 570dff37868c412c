"""What each quality check validates for one date, read from the lake as pandas.

Each loader returns a `Loaded`: the frame, and the suite parameters only the data can give
(references from the previous days, the day's dead-letter count, the last candidate's
scores). Resources arrive by name, as Dagster gives them to a check.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa

from fraud_platform.lake import (
    DEAD_LETTERS_PATH,
    MERCHANTS,
    PROCESSED_TRANSACTIONS_PATH,
    RAW_TRANSACTIONS,
    TRANSACTION_FEATURES_PATH,
    USERS,
    dataset,
    existing_dates,
    row_count,
)
from fraud_platform.quality import drift
from fraud_platform.quality.checks import Loaded
from fraud_platform.topics import DLQ_DUPLICATES, DLQ_TOPICS

DRIFT_DAYS = 7  # layer 3 compares a day with this many days before it
# A day holds a single weekday: its distribution against a week's says nothing about drift.
CALENDAR_FEATURES = {"day_of_week"}
# Dead letters that are errors; a duplicate is the dedup doing its job, not bad data.
ERROR_DLQS = [t.name for t in DLQ_TOPICS if t is not DLQ_DUPLICATES]


def read_days(lake: Any, path: str, days: list[str], columns: list[str] | None = None):
    """The `date=` partitions of `path` for `days` as one pandas frame (None when none)."""
    present = existing_dates(lake, path, days)
    if not present:
        return None
    tables = [dataset(lake, f"{path}/date={d}").to_table(columns=columns) for d in present]
    return pa.concat_tables(tables, promote_options="default").to_pandas()


def previous_days(day: str, count: int) -> list[str]:
    first = date.fromisoformat(day)
    return [(first - timedelta(days=n)).isoformat() for n in range(count, 0, -1)]


def raw_transactions(resources: dict[str, Any], day: str) -> Loaded:
    """The day's raw transactions and its dead-letter count (errors only)."""
    lake = resources["lake"]
    frame = read_days(lake, RAW_TRANSACTIONS.path, [day])
    if frame is None:
        frame = RAW_TRANSACTIONS.schema.empty_table().to_pandas()
    dead = sum(row_count(lake, f"{DEAD_LETTERS_PATH}/{t}", [day]) for t in ERROR_DLQS)
    return Loaded(frame, {"dead_letters": dead})


def processed_transactions(resources: dict[str, Any], day: str) -> Loaded:
    """The day's processed transactions, each marked with whether its user and merchant
    exist in the reference tables (referential integrity)."""
    lake = resources["lake"]
    frame = read_days(lake, PROCESSED_TRANSACTIONS_PATH, [day])
    if frame is None:
        return Loaded(pd.DataFrame(columns=["transaction_id", "user_id", "merchant_id"]))
    for table, key, flag in ((USERS, "user_id", "user_known"),
                             (MERCHANTS, "merchant_id", "merchant_known")):  # fmt: skip
        known = _reference_ids(lake, table.path, key)
        frame[flag] = frame[key].isin(known)
    return Loaded(frame)


def _reference_ids(lake: Any, path: str, key: str) -> pd.Series:
    filesystem, base = lake.filesystem()
    if filesystem.get_file_info(f"{base}/{path}").type.name != "Directory":
        return pd.Series([], dtype=object)
    return dataset(lake, path).to_table(columns=[key]).column(key).to_pandas()


def feature_drift(resources: dict[str, Any], day: str) -> Loaded:
    """The day's features, compared with the previous 7 days' (see `drift_parameters`)."""
    from fraud_platform.models.training import MODEL_FEATURES

    lake = resources["lake"]
    frame = read_days(lake, TRANSACTION_FEATURES_PATH, [day], MODEL_FEATURES)
    before = read_days(lake, TRANSACTION_FEATURES_PATH, previous_days(day, DRIFT_DAYS),
                       MODEL_FEATURES)  # fmt: skip
    yesterday = row_count(lake, TRANSACTION_FEATURES_PATH, previous_days(day, 1))
    frame = pd.DataFrame(columns=MODEL_FEATURES) if frame is None else frame
    return Loaded(frame, drift_parameters(before, yesterday))


def drift_parameters(before: pd.DataFrame | None, yesterday_rows: int) -> dict[str, Any]:
    """The feature_drift suite's references from earlier days' features: per-feature
    quantile CDFs, pairwise correlations, and the volume band around yesterday's rows (any
    volume when there was no yesterday)."""
    from fraud_platform.models.training import MODEL_FEATURES
    from fraud_platform.quality.suites import check_named

    change = check_named("batch/feature_drift").resolved_parameters()["max_volume_change"]
    compared = [f for f in MODEL_FEATURES if f not in CALENDAR_FEATURES]
    return {
        "references": _references(before, compared),
        "correlations": {} if before is None else drift.correlations(before, compared),
        "min_rows": int(yesterday_rows * (1 - change)) if yesterday_rows else 0,
        "max_rows": int(yesterday_rows * (1 + change)) if yesterday_rows else None,
    }


def _references(frame: pd.DataFrame | None, columns: list[str]) -> dict[str, Any]:
    if frame is None:
        return {}
    return {c: drift.reference(frame[c]) for c in columns if c in frame.columns}


def training_set(resources: dict[str, Any], day: str) -> Loaded:
    """The training set as of the day (see `training_parameters`)."""
    from fraud_platform.models.training import load_training_set

    frame = load_training_set(resources["lake"], day)
    return Loaded(frame, training_parameters(frame))


def training_parameters(frame: pd.DataFrame) -> dict[str, Any]:
    """The numeric features to screen for leakage, and the references the test rows are
    compared with: the last training rows of the test period's length (the delay period lies
    between them). The closest periods, because a training window can begin while the
    longest feature windows still fill up (its first days' 30- and 90-day counts are low by
    construction), and seasons move; a break between the periods is what the check is for.
    A calendar feature is left out: two different weeks' days are not a drift. The references
    come from the test period's own cards: its days leave out the cards already known to be
    compromised, whose bursts of spend, merchants and declines would otherwise read as a
    drift of the whole population where many cards are compromised. For the same reason the
    card's own known frauds are not compared: the test period is selected on them."""
    from fraud_platform.features.catalog import CATALOG
    from fraud_platform.models.training import MODEL_FEATURES

    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    if not test.empty:
        span = test["ts_ms"].max() - test["ts_ms"].min()
        train = train[train["ts_ms"] >= train["ts_ms"].max() - span]
        train = train[train["user_id"].isin(test["user_id"])]
    selected_on = {f.name for f in CATALOG if f.entity == "user" and f.kind == "label"}
    compared = [f for f in MODEL_FEATURES if f not in CALENDAR_FEATURES | selected_on]
    references = _references(train, compared)
    return {"train_references": references, "numeric_features": MODEL_FEATURES}


def model_scores(resources: dict[str, Any], day: str) -> Loaded:
    """The day's candidate's holdout scores next to production's (written by the
    evaluation)."""
    from fraud_platform.models import registry

    return Loaded(registry.evaluation_frame(resources["lake"], day, registry.SCORES_FILE))


def feature_importance(resources: dict[str, Any], day: str) -> Loaded:
    """The day's candidate's gain share per feature (written by the evaluation)."""
    from fraud_platform.models import registry

    return Loaded(registry.evaluation_frame(resources["lake"], day, registry.IMPORTANCE_FILE))
