"""`fraud-platform train`: a model trained and evaluated on any period of the lake's data,
through the same Dagster assets the nightly run materializes (the runs show in the UI)."""

from __future__ import annotations

import os
from datetime import date, timedelta

from fraud_platform.config import Settings
from fraud_platform.features.catalog import LONGEST_WINDOW_DAYS
from fraud_platform.lake import RAW_TRANSACTIONS, existing_dates


def plan(train_start: date, train_days: int, delay_days: int, test_days: int) -> dict:
    """Dates and windows of a training run: test days follow the training days, and labels
    are read `delay_days` after the last test day."""
    as_of = train_start + timedelta(days=train_days + test_days + delay_days - 1)
    return {
        "as_of": as_of.isoformat(),
        "features_start": train_start.isoformat(),
        "features_end": (as_of - timedelta(days=delay_days)).isoformat(),
        "history_start": (train_start - timedelta(days=LONGEST_WINDOW_DAYS)).isoformat(),
        "window": {
            "window_days": train_days + test_days + delay_days,
            "delay_days": delay_days,
            "test_days": test_days,
        },
    }


def run_training(
    train_start: date, train_days: int, delay_days: int, test_days: int, rounds: int, echo
) -> dict:
    import dagster as dg

    from assets.features import transaction_features
    from assets.models import candidate_model, model_evaluation, production_model
    from assets.processed import processed_transactions
    from assets.raw import raw_labels, raw_transactions
    from assets.training import training_set
    from fraud_platform.batch.processing import date_range
    from fraud_platform.resources import build_resources

    settings = Settings.from_env()
    os.environ.setdefault("DAGSTER_HOME", str(settings.home / "dagster"))
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    resources = build_resources(settings)
    steps = plan(train_start, train_days, delay_days, test_days)
    lake = resources["lake"]
    present = existing_dates(
        lake, RAW_TRANSACTIONS.path, date_range(steps["history_start"], steps["as_of"])
    )
    if not present or present[0] > steps["features_start"]:
        raise ValueError(
            f"the lake has no raw transactions on {steps['features_start']}: import or simulate "
            "that period first"
        )
    instance = dg.DagsterInstance.get()

    def materialize(assets, start: str, end: str, config=None) -> None:
        echo(f"materializing {', '.join(a.key.to_user_string() for a in assets)} {start}..{end}")
        result = dg.materialize(
            assets,
            instance=instance,
            resources=resources,
            tags={
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end,
            },
            run_config=config,
        )
        if not result.success:
            raise RuntimeError(f"materializing {start}..{end} failed; see the Dagster UI")

    materialize([raw_transactions, raw_labels, processed_transactions], present[0], steps["as_of"])
    materialize([transaction_features], steps["features_start"], steps["features_end"])
    materialize(
        [training_set, candidate_model, model_evaluation, production_model],
        steps["as_of"],
        steps["as_of"],
        {
            "ops": {
                "training__training_set": {"config": steps["window"]},
                "models__candidate": {"config": {"rounds": rounds}},
            }
        },
    )
    from fraud_platform.lake import read_json
    from fraud_platform.models import registry

    version = registry.latest_candidate(lake, steps["as_of"])
    filesystem, base = lake.filesystem()
    report = read_json(filesystem, f"{base}/{registry.EVALUATIONS}/{version}/evaluation.json")
    return {"version": version, **steps, "report": report}
