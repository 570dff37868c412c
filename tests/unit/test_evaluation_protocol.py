"""The evaluation protocol on hand-made data: card precision@k, the periods and the folds, the
removal of known-compromised cards, and model selection."""

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraud_platform.features.catalog import DAY_MS
from fraud_platform.lake import LABELS_SCHEMA, TRANSACTION_FEATURES_PATH
from fraud_platform.models.evaluation import card_precision_at_k, evaluate_frame
from fraud_platform.models.protocol import TrainingWindow, day_start_ms
from fraud_platform.models.selection import select
from fraud_platform.models.training import Hyperparameters, build_training_set
from fraud_platform.resources import LakeResource


def cp(rows: list[tuple], k: int):
    days, cards, labels, scores = (np.array(column) for column in zip(*rows, strict=True))
    return card_precision_at_k(days, cards, labels, scores, k)


def test_card_precision_ranks_cards_by_their_best_transaction_and_breaks_ties_by_id():
    result = cp(
        [
            ("d1", "a", 1, 0.9),
            ("d1", "b", 0, 0.9),  # ties with a: a comes first (card id)
            ("d1", "c", 0, 0.95),
            ("d1", "c", 1, 0.1),  # c is compromised that day; its best score is 0.95
            ("d1", "d", 1, 0.2),
        ],
        k=2,
    )
    assert result.per_day == {"d1": 1.0}  # c, then a before b: both compromised
    assert result.compromised_cards == {"d1": 3}
    assert cp([("d1", "b", 0, 0.9), ("d1", "a", 1, 0.9)], k=1).per_day == {"d1": 1.0}


def test_a_card_caught_on_an_earlier_day_leaves_the_later_days():
    rows = [
        ("d1", "a", 1, 0.9),
        ("d1", "b", 0, 0.1),
        ("d2", "a", 1, 0.99),  # a was caught on d1: it no longer counts
        ("d2", "c", 1, 0.5),
        ("d2", "e", 0, 0.4),
    ]
    result = cp(rows, k=2)
    assert result.per_day == {"d1": 0.5, "d2": 0.5}
    assert result.mean == 0.5
    assert result.compromised_cards == {"d1": 1, "d2": 1}


def handbook_card_precision(frame: pd.DataFrame, k: int) -> float:
    """The Fraud Detection Handbook's card_precision_top_k (chapter 4), as published."""
    detected, per_day = [], []
    for day in sorted(frame["day"].unique()):
        rows = frame[(frame["day"] == day) & ~frame["card"].isin(detected)]
        by_card = rows.groupby("card").max().sort_values(by="score", ascending=False)
        top = by_card.head(k)
        found = list(top[top["label"] == 1].index)
        per_day.append(len(found) / k)
        detected.extend(found)
    return float(np.mean(per_day))


def test_card_precision_equals_the_handbooks_on_random_days():
    rng = np.random.default_rng(4)
    n = 3_000
    frame = pd.DataFrame(
        {
            "day": rng.integers(0, 5, n),
            "card": rng.integers(0, 400, n),
            "label": (rng.random(n) < 0.05).astype(int),
            "score": rng.random(n),  # continuous: no ties, where the two could differ
        }
    )
    frame["score"] += frame["label"] * rng.random(n) * 0.5
    ours = cp(list(frame.itertuples(index=False, name=None)), k=20)
    assert ours.mean == pytest.approx(handbook_card_precision(frame, 20))


def test_the_handbook_split_and_its_validation_folds():
    window = TrainingWindow(train_days=7, delay_days=7, test_days=7)
    as_of = window.as_of_for(date(2018, 7, 25))
    periods = window.periods(as_of)
    assert as_of == "2018-08-21"  # the test labels have 7 days to mature
    assert (periods.train[0], periods.train[-1]) == ("2018-07-25", "2018-07-31")
    assert (periods.delay[0], periods.delay[-1]) == ("2018-08-01", "2018-08-07")
    assert (periods.test[0], periods.test[-1]) == ("2018-08-08", "2018-08-14")
    latest_fold = window.periods(window.fold_as_of(as_of, 0))
    assert latest_fold.test == periods.train  # validated where the real split trains
    assert latest_fold.train[0] == "2018-07-11"
    assert window.periods(window.fold_as_of(as_of, 1)).test[0] == "2018-07-18"
    # a fold's labels are read before the real test period starts
    assert latest_fold.test_labels_before_ms == day_start_ms("2018-08-08")
    with pytest.raises(ValueError, match="at least one training and one test day"):
        TrainingWindow(0, 7, 7)


WINDOW = TrainingWindow(train_days=2, delay_days=1, test_days=2)
AS_OF = "2025-03-06"  # train 03-01, 03-02; delay 03-03; test 03-04, 03-05; labels by 03-06


def write_lake(root, transactions: list[tuple], labels: list[tuple]) -> LakeResource:
    """Feature partitions (a single feature) and label partitions, as the assets write them."""
    frame = pd.DataFrame(transactions, columns=["transaction_id", "user_id", "date", "hour"])
    frame["ts_ms"] = [
        day_start_ms(d) + h * 3_600_000 for d, h in zip(frame.date, frame.hour, strict=True)
    ]
    frame["amount"] = 10.0
    for day, rows in frame.groupby("date"):
        folder = root / TRANSACTION_FEATURES_PATH / f"date={day}"
        folder.mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(rows.drop(columns=["date", "hour"])), folder / "f.parquet"
        )
    by_id = frame.set_index("transaction_id")
    for t, fraud, complete_ms in labels:
        record = {"transaction_id": t, "is_fraud": fraud}
        record["transaction_time"] = pd.Timestamp(by_id.loc[t, "ts_ms"], unit="ms", tz="UTC")
        record["investigation_complete_time"] = pd.Timestamp(complete_ms, unit="ms", tz="UTC")
        day = record["investigation_complete_time"].date().isoformat()
        folder = root / "labels/fraud_investigations" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([record], schema=LABELS_SCHEMA)
        pq.write_table(table, folder / f"{record['transaction_id']}.parquet")
    return LakeResource(root=str(root))


@pytest.fixture(scope="module")
def spark():
    from fraud_platform.spark import get_spark

    return get_spark("local[2]", {"spark.sql.shuffle.partitions": "4"})


def test_known_compromised_cards_leave_the_test_days_and_labels_are_read_in_time(spark, tmp_path):
    test_day_1, test_day_2 = day_start_ms("2025-03-04"), day_start_ms("2025-03-05")
    lake = write_lake(
        tmp_path,
        [
            ("t-old", "known", "2025-03-01", 10),  # a fraud known before the test period
            ("t-known-1", "known", "2025-03-04", 10),
            ("t-late", "late", "2025-03-02", 10),  # a fraud whose label comes in the test
            ("t-late-1", "late", "2025-03-04", 10),
            ("t-late-2", "late", "2025-03-05", 10),
            ("t-gap", "gap", "2025-03-03", 10),  # the delay period is no split
            ("t-new-1", "new", "2025-03-04", 9),  # a fraud on test day 1, known by day 2
            ("t-new-2", "new", "2025-03-05", 9),
        ],
        [
            ("t-old", True, test_day_1 - DAY_MS),
            ("t-late", True, test_day_1 + 3_600_000),
            ("t-new-1", True, test_day_2 - 3_600_000),
            ("t-new-2", True, test_day_2 + 20 * 3_600_000),
        ],
    )
    frame, removed = build_training_set(spark, lake, AS_OF, WINDOW)
    rows = {r["transaction_id"]: r for r in frame.collect()}
    assert set(rows) == {"t-old", "t-late", "t-late-1", "t-new-1"}
    assert removed == 3  # t-known-1 (known before the test), t-late-2 and t-new-2 (known by then)
    assert rows["t-old"]["label"] == 1 and rows["t-old"]["split"] == "train"
    assert rows["t-late"]["label"] == 0  # unknown when the test period began
    assert rows["t-new-1"]["label"] == 1 and rows["t-new-1"]["split"] == "test"
    assert rows["t-late-1"]["split"] == "test"  # "late" became known after day 1 began

    everything, none = build_training_set(spark, lake, AS_OF, WINDOW, False)
    assert none == 0 and everything.count() == 7  # all but the delay period's


def fold_frame(rng) -> pd.DataFrame:
    n = 600
    frame = pd.DataFrame({"amount": rng.uniform(1, 100, n)})
    frame["label"] = ((frame["amount"] > 80) & (rng.random(n) < 0.8)).astype(int)
    frame["split"] = np.where(np.arange(n) < 400, "train", "test")
    frame["date"] = np.where(np.arange(n) % 2 == 0, "2025-03-01", "2025-03-02")
    frame["user_id"] = [f"u{i % 150}" for i in range(n)]
    return frame


def test_selection_scores_fewer_rounds_with_the_first_trees_of_more():
    """Points differing only in rounds share one booster: its first trees are the smaller
    point's model exactly, so the search trains once per family."""
    frame = fold_frame(np.random.default_rng(3))
    short, long = Hyperparameters(max_depth=2, rounds=5), Hyperparameters(max_depth=2, rounds=20)
    trained: list[int] = []
    selection = select(
        {"f": frame}, "average_precision", [short, long], progress=lambda _, n: trained.append(n)
    )
    assert trained == [1]  # one model for the two points
    alone = select({"f": frame}, "average_precision", [short])
    assert selection.results[0] == alone.results[0]


def test_selection_picks_the_grid_point_with_the_best_mean_over_the_folds():
    rng = np.random.default_rng(2)

    def fold() -> pd.DataFrame:
        return fold_frame(rng)

    candidates = [Hyperparameters(max_depth=1, rounds=2), Hyperparameters(max_depth=3, rounds=30)]
    selection = select({"f1": fold(), "f2": fold()}, "card_precision_at_k", candidates, top_k=10)
    scores = [r["card_precision_at_k"] for r in selection.results]
    assert len(selection.results) == 2 and selection.folds == ["f1", "f2"]
    assert selection.score == max(scores)
    assert selection.chosen == candidates[scores.index(max(scores))]
    with pytest.raises(ValueError, match="selection metric"):
        select({"f1": fold()}, "accuracy", candidates)


def test_evaluation_reports_card_precision_only_with_days_and_cards():
    frame = pd.DataFrame({"label": [1, 0, 1, 0], "score": [0.9, 0.2, 0.7, 0.1]})
    assert np.isnan(evaluate_frame(frame, "score", 0.5).card_precision_at_k)
    frame["date"], frame["user_id"] = ["d1", "d1", "d2", "d2"], ["a", "b", "c", "d"]
    metrics = evaluate_frame(frame, "score", 0.5, top_k=1)
    assert metrics.card_precision_at_k == 1.0 and metrics.auc_roc == 1.0
