"""Training set -> candidate -> evaluation -> promotion on simulated data, real Spark."""

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pytest

from assets.features import transaction_features
from assets.models import candidate_model, model_evaluation, production_model
from assets.processed import processed_transactions
from assets.raw import raw_labels, raw_transactions
from assets.training import training_set
from fraud_platform.models import registry
from fraud_platform.resources import LakeResource, SparkResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world

pytestmark = pytest.mark.integration
END = date(2025, 4, 1)
DAYS = 24
AS_OF = (END - timedelta(days=1)).isoformat()
FIRST = (END - timedelta(days=DAYS)).isoformat()
TRAINING = {"window_days": 22, "delay_days": 3, "test_days": 6}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    lake = LakeResource(root=str(tmp_path_factory.mktemp("model-lake")))
    write_history(lake, build_world(seed=9, n_users=600, n_merchants=900), DAYS, 1_500, END)
    return lake


def run(assets, lake, start, end, config=None):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            assets,
            instance=instance,
            resources={"lake": lake, "spark": SparkResource(shuffle_partitions=4)},
            tags={
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end,
            },
            run_config=config,
        )
    assert result.success
    return result


MODEL_ASSETS = [training_set, candidate_model, model_evaluation, production_model]
CONFIG = {"ops": {"training__training_set": {"config": TRAINING}}}


@pytest.fixture(scope="module")
def trained(lake, spark):
    run(
        [raw_transactions, raw_labels, processed_transactions, transaction_features],
        lake,
        FIRST,
        AS_OF,
    )
    return run(MODEL_ASSETS, lake, AS_OF, AS_OF, CONFIG)


def test_training_set_is_split_by_time_and_labelled_by_known_labels(lake, trained):
    table = (
        ds.dataset(
            f"{lake.root}/processed/training_sets/date={AS_OF}",
            format="parquet",
            partitioning="hive",
        )
        .to_table()
        .to_pandas()
    )
    train, test = table[table["split"] == "train"], table[table["split"] == "test"]
    assert train["ts_ms"].max() < test["ts_ms"].min()  # every training row is older
    assert 0 < train["label"].mean() < 0.05
    newest = (date.fromisoformat(AS_OF) - timedelta(days=TRAINING["delay_days"])).isoformat()
    assert table["date"].astype(str).max() == newest  # labels had `delay_days` to mature


def test_candidate_is_stored_with_its_metadata_and_promoted_first(lake, trained):
    version = registry.current_version(lake)
    assert version is not None and version.startswith(AS_OF)
    metadata = registry.load_metadata(lake, version)
    assert (
        metadata["training_partitions"][0]
        == (date.fromisoformat(AS_OF) - timedelta(days=TRAINING["window_days"] - 1)).isoformat()
    )
    assert len(metadata["test_partitions"]) == TRAINING["test_days"]
    assert "amount" in metadata["features"] and metadata["parameters"]["scale_pos_weight"] > 1
    assert metadata["code_version"] != "unknown"
    assert metadata["metrics"]["auc_roc"] > 0.75
    folder = Path(lake.root) / "analytics" / "model_performance" / version
    report = json.loads((folder / "evaluation.json").read_text())
    assert report["production"] is None
    for image in ("roc.png", "pr.png"):
        assert (folder / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert registry.history(lake)[-1]["reason"].startswith("layer 5 passed")
    for frame in (registry.SCORES_FILE, registry.IMPORTANCE_FILE):
        assert (folder / frame).stat().st_size > 0


def test_promotion_refuses_a_model_no_better_than_production(lake, trained):
    before = registry.current_version(lake)
    result = run([model_evaluation, production_model], lake, AS_OF, AS_OF)
    decision = result.asset_materializations_for_node("models__production")[0].metadata
    assert decision["promoted"].value is False
    assert "expect_score_to_beat_baseline" in decision["reason"].value
    assert registry.current_version(lake) == before


def test_train_command_trains_and_evaluates_any_period(lake, trained, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from fraud_platform.cli import main
    from fraud_platform.models.train_command import plan

    start = date.fromisoformat(FIRST) + timedelta(days=2)
    steps = plan(start, train_days=10, delay_days=3, test_days=5)
    assert steps["as_of"] == (start + timedelta(days=17)).isoformat()
    assert steps["features_end"] == (start + timedelta(days=14)).isoformat()
    monkeypatch.setenv("FRAUD_LAKE_ROOT", lake.root)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    args = ["train", "--train-start", start.isoformat(), "--train-days", "10",
            "--delay-days", "3", "--test-days", "5", "--rounds", "50"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "AUC-ROC" in result.output and f"as of {steps['as_of']}" in result.output

    early = CliRunner().invoke(main, ["train", "--train-start", "2000-01-01"])
    assert early.exit_code == 1 and "no raw transactions on 2000-01-01" in early.output
