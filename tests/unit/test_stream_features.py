"""The stream computes the catalog's features exactly as the batch SQL does.

The enrichment job's logic (fraud_streaming.features, fed by the compiled catalog: the user
step, then the merchant step) runs over random transactions with nulls, shared milliseconds,
device switches and fraud labels completed before, at and after the transactions they could
count for, and every catalog feature it emits is compared with DuckDB running the batch's
generated SQL on the same rows and labels.
"""

import random

import duckdb
import pytest
from fraud_streaming.features import (
    Enricher,
    Frauds,
    Histories,
    History,
    MerchantEnricher,
    Windows,
)

from fraud_platform.features.catalog import CATALOG
from fraud_platform.features.sql import feature_sql
from fraud_platform.features.stream import (
    UntranslatableExpression,
    enriched_feature_names,
    python_expression,
    stream_features,
)

from ..equality import same

HOUR = 3_600_000
T0 = 1_750_000_000_000


def random_rows(seed: int, users: int = 12, count: int = 1_500) -> list[dict]:
    rng = random.Random(seed)
    rows, clock = [], T0
    for i in range(count):
        clock += rng.choice([0, 1, 7_000, 600_000, 3 * HOUR, 30 * HOUR])  # same ms, too
        home = None if rng.random() < 0.1 else (48.0 + rng.random(), 2.0 + rng.random())
        rows.append({
            "transaction_id": f"t{i:05d}",
            "user_id": f"u{rng.randrange(users)}",
            "merchant_id": f"m{rng.randrange(30)}",
            "amount": round(rng.lognormvariate(3, 1), 2),
            "ts_ms": clock,
            "lat": 48.0 + rng.random(), "lon": 2.0 + rng.random(),
            "country": rng.choice(["FR", "DE", None]),
            "device_id": rng.choice(["d1", "d2", "d3", None]),
            "channel": rng.choice(["online", "card_present", None]),
            "declined": rng.random() < 0.05,
            "home_lat": home and home[0], "home_lon": home and home[1],
            "merchant_category": rng.choice(["grocery", "travel"]),
            "merchant_risk_tier": rng.choice(["low", "high", None]),
        })  # fmt: skip
    return rows


DAY = 24 * HOUR


def random_labels(rows: list[dict], seed: int) -> list[dict]:
    """Fraud verdicts (some twice) and genuine ones, completed 1 hour to 12 days after their
    transaction: before, around and after the 7-day delay the features are shifted by."""
    rng = random.Random(seed)
    labels = []
    for row in rng.sample(rows, len(rows) // 5):
        complete = row["ts_ms"] + rng.randrange(HOUR, 12 * DAY)
        fraud = rng.random() < 0.7
        label = {"transaction_id": row["transaction_id"], "is_fraud": fraud}
        label |= {"complete_ms": complete, "tx_ms": row["ts_ms"]}
        labels.append({**label, "user_id": row["user_id"], "merchant_id": row["merchant_id"]})
        if fraud and rng.random() < 0.2:  # a second verdict on the same transaction
            labels.append({**labels[-1], "complete_ms": complete + rng.randrange(1, DAY)})
    return labels


def batch_features(rows: list[dict], labels: list[dict]) -> dict[str, dict]:
    import pandas as pd

    con = duckdb.connect()
    frame = pd.DataFrame(rows)
    frame["timestamp"] = pd.to_datetime(frame["ts_ms"], unit="ms", utc=True)
    con.register("txns", frame)
    verdicts = pd.DataFrame(labels)[["transaction_id", "is_fraud", "complete_ms"]]
    con.register("labels", verdicts)
    result = con.execute(feature_sql("txns", "labels", "duckdb")).df()
    return {r["transaction_id"]: r for r in result.to_dict("records")}


def stream_enrich(rows: list[dict], labels: list[dict]) -> dict[str, dict]:
    """The enrichment's two keyed steps in process: the labels arrive first (a label counts
    once its investigation has completed before the transaction, whichever arrived first),
    then the transactions in event order, as per key on a keyed topic."""
    spec = stream_features()
    users, merchants = Enricher(spec), MerchantEnricher(spec)
    histories: dict[tuple, History] = {}
    frauds: dict[tuple, Frauds] = {}
    for label in (lab for lab in labels if lab["is_fraud"]):
        for entity in ("user", "merchant"):
            known = frauds.setdefault((entity, label[f"{entity}_id"]), Frauds())
            known.add(label["tx_ms"], label["complete_ms"], label["transaction_id"])
    out = {}
    for row in rows:
        user, merchant = ("user", row["user_id"]), ("merchant", row["merchant_id"])
        row = dict(row)
        user_history = histories.setdefault(user, History())
        merchant_history = histories.setdefault(merchant, History())
        features = users.enrich(user_history, frauds.get(user, Frauds()), row)
        features |= merchants.enrich(
            merchant_history, frauds.get(merchant, Frauds()), row, features
        )
        out[row["transaction_id"]] = features
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_enrichment_equals_the_batch_sql(seed):
    rows = random_rows(seed)
    labels = random_labels(rows, seed)
    expected, got = batch_features(rows, labels), stream_enrich(rows, labels)
    mismatches = [
        (tid, name, features[name], expected[tid][name])
        for tid, features in got.items()
        for name in enriched_feature_names()
        if not same(features[name], expected[tid][name])
    ]
    assert len(rows) == 1_500 and mismatches == []
    counted = [f["merchant_fraud_count_30d"] for f in got.values()]
    assert sum(counted) > 100 and any(f["user_fraud_count_30d"] for f in got.values())


def test_the_enrichment_carries_every_catalog_feature():
    assert set(enriched_feature_names()) == {f.name for f in CATALOG}


def test_windows_as_of_include_the_instant_and_drop_what_aged_out():
    spec = stream_features()["online_user_windows"]
    windows, history = Windows(spec), History()
    for i, ts in enumerate([T0, T0 + HOUR, T0 + HOUR + 1]):
        row = {"amount": 10.0 * (i + 1), "merchant_id": "m", "country": "FR",
               "declined": False, "device_changed": 0}  # fmt: skip
        history.add((ts, f"t{i}", None, 0, windows.values(row)))
    at = windows.as_of(history, T0 + HOUR + 1)
    assert at["user_transaction_count_1h"] == 2  # T0 is exactly one hour before: out
    assert at["user_total_spend_1h"] == 50.0 and at["user_max_amount_24h"] == 30.0


def test_translation_follows_sql_nulls_and_refuses_what_it_does_not_know():
    from fraud_streaming.features import compile_expression

    ratio = compile_expression(python_expression("amount / NULLIF(avg, 0)"))
    assert ratio({"amount": 5.0, "avg": 0}) is None and ratio({"amount": 5.0, "avg": 2}) == 2.5
    assert ratio({"amount": None, "avg": 2}) is None
    flag = compile_expression(python_expression("CASE WHEN c = 'x' THEN 1 ELSE 0 END"))
    assert flag({"c": None}) == 0 and flag({"c": "x"}) == 1
    with pytest.raises(UntranslatableExpression, match="REGEXP"):
        python_expression("REGEXP_EXTRACT(name, 'a')")


@pytest.mark.parametrize("seed", [4, 5])
def test_windows_do_not_depend_on_arrival_order(seed):
    """Events of a user that arrive late (inside the lateness bound, or replayed out of
    order) leave the same windows as in order: device_changed of the later events is
    recomputed, as the batch would compute it."""
    rows = random_rows(seed, users=3, count=600)
    spec = stream_features()["online_user_windows"]
    windows = Windows(spec)

    def final_windows(order: list[dict]) -> dict[str, dict]:
        histories: dict[str, History] = {}
        for row in order:
            histories.setdefault(row["user_id"], History()).record(dict(row), windows, 10**12)
        return {u: windows.as_of(h, h.latest_ms()) for u, h in histories.items()}

    shuffled = rows[:]
    rng = random.Random(seed)
    for i in range(0, len(shuffled) - 5, 5):  # swap within small blocks: late arrivals
        block = shuffled[i : i + 5]
        rng.shuffle(block)
        shuffled[i : i + 5] = block
    in_order, out_of_order = final_windows(rows), final_windows(shuffled)
    assert in_order == out_of_order
    assert any(v["user_device_change_count_30d"] for v in in_order.values())


class KeyedListState:
    """The calls Histories makes on Flink's keyed ListState, scoped to `key` as Flink scopes
    keyed state to the current key (the real state runs in the streaming integration tests)."""

    def __init__(self) -> None:
        self.lists: dict[str, list] = {}
        self.key = ""
        self.appends = self.rewrites = 0

    def get(self):
        return list(self.lists.get(self.key, []))

    def add_all(self, values: list) -> None:
        self.lists.setdefault(self.key, []).extend(values)
        self.appends += 1

    def update(self, values: list) -> None:
        self.lists[self.key] = values  # kept, not copied, as a state cache may keep it
        self.rewrites += 1

    def clear(self) -> None:
        self.lists.pop(self.key, None)


def shuffled_in_blocks(rows: list[dict], seed: int, size: int = 5) -> list[dict]:
    rows, rng = rows[:], random.Random(seed)
    for i in range(0, len(rows) - size, size):
        block = rows[i : i + size]
        rng.shuffle(block)
        rows[i : i + size] = block
    return rows


def test_histories_read_back_from_state_enrich_as_the_cached_ones():
    """With a one-entry cache every user's history is read back from its stored list
    (appended events, pruned ones still in it, rewrites after late arrivals): the features
    equal those of histories kept in memory throughout, and in-order events only append."""
    rows = shuffled_in_blocks(random_rows(6, users=4, count=1_500), seed=6)
    enricher = Enricher(stream_features())
    state = KeyedListState()
    stored = Histories(state, capacity=1, keep_ms=enricher.keep_ms)
    kept: dict[str, History] = {}
    mismatches = []
    for row in rows:
        user = state.key = row["user_id"]
        history = stored.get(user)
        got = enricher.enrich(history, Frauds(), dict(row))
        stored.put(user, history)
        want = enricher.enrich(kept.setdefault(user, History()), Frauds(), dict(row))
        if got != want:
            mismatches.append(row["transaction_id"])
        assert len(state.lists[user]) <= 2 * len(history.events) + stored.slack
    assert mismatches == []
    assert 0 < state.rewrites < state.appends  # late arrivals rewrite; the rest append
    assert max(len(h.events) for h in kept.values()) < 200  # pruning took part


def test_an_erased_user_leaves_the_state_as_if_never_seen():
    """After an erasure the user's history is gone from the cache and the state, and a
    merchant's history (stored copy too) holds exactly what it would without the user's
    transactions, one the request did not list included (its values name the user);
    frauds too."""
    rows = random_rows(8, users=4, count=600)
    windows = Windows(stream_features()["merchant_windows"])
    users, merchants = KeyedListState(), KeyedListState()
    by_user = Histories(users, capacity=10, keep_ms=10**13)
    by_merchant = Histories(merchants, capacity=10, keep_ms=10**13)
    passed = []  # as the job passes them on: device_changed set by the user's step
    for row in rows:
        row = dict(row)
        for state, histories, key in ((users, by_user, row["user_id"]),
                                      (merchants, by_merchant, row["merchant_id"])):  # fmt: skip
            state.key = key
            history = histories.get(key)
            history.record(row, windows, 10**13)
            histories.put(key, history)
        passed.append(row)
    erased = rows[0]["user_id"]
    ids = {r["transaction_id"] for r in rows if r["user_id"] == erased}
    users.key = erased
    by_user.forget(erased)
    assert erased not in users.lists and by_user.get(erased).events == []
    for merchant in {r["merchant_id"] for r in rows}:
        merchants.key = merchant
        history = by_merchant.get(merchant)
        history.without(ids - {min(ids)}, erased)
        by_merchant.put(merchant, history)
        never_seen = History()
        for row in passed:
            if row["merchant_id"] == merchant and row["user_id"] != erased:
                never_seen.record(dict(row), windows, 10**13)
        assert history.events == never_seen.events == merchants.lists.get(merchant, [])
    frauds = Frauds([(1, 2, "a"), (3, 4, next(iter(ids))), (5, 6, "b")])
    assert frauds.without(ids) == 1 and frauds.changed
    assert [e[2] for e in frauds.entries] == ["a", "b"]
