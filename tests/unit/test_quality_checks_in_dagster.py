"""The suites as Dagster asset checks: a blocking check that fails stops what is downstream
of its asset in the same run; on good data the run goes through."""

from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from assets.models import posttraining_checks
from assets.processed import processed_checks
from assets.raw import raw_checks, raw_transactions
from assets.training import training_checks
from fraud_platform.lake import MERCHANTS, PROCESSED_TRANSACTIONS_PATH, USERS
from fraud_platform.models import registry
from fraud_platform.models.gate import promotion_decision
from fraud_platform.models.training import FEATURES, TRAINING_SETS_PATH
from fraud_platform.partitions import daily
from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world

from .test_quality_suites import holdout, processed_batch, training_batch

DAY = "2025-03-05"


@dg.asset(key=["test", "downstream"], deps=[raw_transactions], partitions_def=daily)
def downstream() -> dg.MaterializeResult:
    return dg.MaterializeResult()


def run(lake: LakeResource) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [raw_transactions, downstream, *raw_checks],
            partition_key=DAY,
            instance=instance,
            resources={"lake": lake},
            raise_on_error=False,
        )


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_a_failing_blocking_check_stops_downstream(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    write_history(lake, build_world(seed=2, n_users=200, n_merchants=300), days=1, volume=500,
                  end=date(2025, 3, 6))  # fmt: skip

    good = run(lake)
    (evaluation,) = good.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.metadata["failures"]
    assert materialized(good) == {"raw/transactions", "test/downstream"}

    # A replayed file: every transaction of one hour written a second time.
    hour = next((tmp_path / "raw" / "transactions" / f"date={DAY}").iterdir())
    first = next(hour.glob("*.parquet"))
    pq.write_table(ds.dataset(first).to_table(), hour / "replayed.parquet")

    bad = run(lake)
    (evaluation,) = bad.get_asset_check_evaluations()
    assert not evaluation.passed
    failures = evaluation.metadata["failures"].value
    assert any("expect_column_values_to_be_unique on transaction_id" in f for f in failures)
    assert materialized(bad) == {"raw/transactions"}  # downstream did not run


# -- layers 3, 4 and 5: a crafted upstream under the guarded asset's key ----------------------


def crafted(key: str, write) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """An asset under `key` that writes a crafted partition with `write(lake, day)`, and a
    downstream asset that only records it ran."""

    @dg.asset(key=key.split("/"), partitions_def=daily)
    def upstream(context: dg.AssetExecutionContext, lake: LakeResource) -> None:
        write(lake, context.partition_key)

    @dg.asset(key=["test", "after", *key.split("/")], deps=[upstream], partitions_def=daily)
    def after() -> None:
        pass

    return upstream, after


def run_guarded(lake: LakeResource, key: str, write, checks) -> tuple[bool, set[str]]:
    upstream, after = crafted(key, write)
    with dg.instance_for_test() as instance:
        result = dg.materialize([upstream, after, *checks], partition_key=DAY, instance=instance,
                                resources={"lake": lake}, raise_on_error=False)  # fmt: skip
    passed = all(e.passed for e in result.get_asset_check_evaluations())
    return passed, materialized(result)


def write_parquet(lake: LakeResource, path: str, frame: pd.DataFrame) -> None:
    folder = Path(lake.root) / path
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "part-0.parquet", index=False)


def test_layer_3_unknown_merchants_stop_the_features(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    write_parquet(lake, USERS.path, pd.DataFrame({"user_id": [f"u{i}" for i in range(40)]}))
    write_parquet(lake, MERCHANTS.path, pd.DataFrame({"merchant_id": [f"m{i}" for i in range(9)]}))

    def processed(merchants: int):
        def write(lake, day):
            frame = processed_batch()
            frame["merchant_id"] = [f"m{i % merchants}" for i in range(len(frame))]
            frame = frame.drop(columns=["user_known", "merchant_known"])
            write_parquet(lake, f"{PROCESSED_TRANSACTIONS_PATH}/date={day}", frame)

        return write

    checks = [*processed_checks]
    assert run_guarded(lake, "processed/transactions", processed(9), checks)[0]
    passed, ran = run_guarded(lake, "processed/transactions", processed(12), checks)
    assert not passed and ran == {"processed/transactions"}
    report = tmp_path / "analytics" / "data_quality_reports" / f"date={DAY}"
    assert (report / "batch_processed_transactions.html").read_text().count("merchant_known")


def candidate_evaluation(defect: str):
    """Writes a candidate and its evaluation frames: good, worse than production, or broken
    (flags no transaction at all)."""

    def write(lake, day):
        version = f"{day}-test"
        registry.save_candidate(lake, version, b"{}", {"version": version})
        scores = holdout()
        if defect == "worse":  # production's scores were the better ones
            scores["score"], scores["production_score"] = (
                scores["production_score"], scores["score"])  # fmt: skip
        elif defect == "one class":
            scores["score"] = 0.01
        folder = Path(lake.root) / registry.EVALUATIONS / version
        folder.mkdir(parents=True, exist_ok=True)
        scores.to_parquet(folder / registry.SCORES_FILE)
        shares = pd.DataFrame({"feature": FEATURES, "importance": 1 / len(FEATURES)})
        shares.to_parquet(folder / registry.IMPORTANCE_FILE)

    return write


def test_layer_5_a_broken_model_stops_the_run_and_a_worse_one_is_not_promoted(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    key, checks = "models/evaluation", posttraining_checks
    assert run_guarded(lake, key, candidate_evaluation("good"), checks)[0]
    assert promotion_decision(lake, DAY)[0]

    passed, ran = run_guarded(lake, key, candidate_evaluation("one class"), checks)
    assert not passed and ran == {"models/evaluation"}  # blocking: nothing downstream ran

    # Not better is a warning: the run goes on, and the promotion refuses.
    passed, ran = run_guarded(lake, key, candidate_evaluation("worse"), checks)
    assert not passed and ran == {"models/evaluation", "test/after/models/evaluation"}
    promote, reason = promotion_decision(lake, DAY)
    assert not promote and reason.startswith("layer 5 failed: expect_score_to_beat_baseline")


def test_layer_4_a_leaky_training_set_stops_the_model(tmp_path):
    lake = LakeResource(root=str(tmp_path))

    def training(leak: bool):
        def write(lake, day):
            frame = training_batch()
            if leak:  # a merchant fraud rate computed with labels not known yet
                frame["merchant_fraud_risk_30d"] = frame["label"] * 0.9 + 0.05
            for split, rows in frame.groupby("split"):
                path = f"{TRAINING_SETS_PATH}/date={day}/split={split}"
                write_parquet(lake, path, rows.drop(columns=["split"]))

        return write

    key = "training/training_set"
    assert run_guarded(lake, key, training(False), training_checks)[0]
    passed, ran = run_guarded(lake, key, training(True), training_checks)
    assert not passed and ran == {key}
