"""Models layer: candidate (XGBoost), evaluation against production, promotion."""

import hashlib
import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from assets.training import training_set
from fraud_platform.batch.metadata import partition_dates, timed
from fraud_platform.lake import parquet_bytes, read_json, write_atomically
from fraud_platform.models import registry
from fraud_platform.models.gate import POSTTRAINING, Thresholds, promotion_decision
from fraud_platform.models.training import (
    FEATURES,
    evaluate,
    importance,
    load_training_set,
    predict,
    train,
)
from fraud_platform.partitions import daily
from fraud_platform.plots import images_md
from fraud_platform.quality.checks import suite_checks
from fraud_platform.resources import LakeResource


class ModelConfig(dg.Config):
    rounds: int = 200


def candidate_version(as_of: str, params: dict) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return f"{as_of}-{registry.code_version().replace('+', '-')}-{digest}"


@dg.asset(
    key_prefix="models",
    name="candidate",
    group_name="models",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[training_set],
    kinds={"xgboost"},
)
def candidate_model(
    context: dg.AssetExecutionContext, config: ModelConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """An XGBoost model trained on the day's training set, stored with its metadata."""
    thresholds = Thresholds.from_env()
    metadata: dict = {}
    with timed(metadata):
        for day in partition_dates(context):
            frame = load_training_set(lake, day)
            booster, params = train(frame, config.rounds)
            test = frame[frame["split"] == "test"]
            metrics = evaluate(test["label"].to_numpy(), predict(booster, test), thresholds.review)
            version = candidate_version(day, params)
            train_rows = frame[frame["split"] == "train"]
            description = {
                "version": version,
                "as_of": day,
                "training_partitions": sorted(train_rows["date"].astype(str).unique().tolist()),
                "test_partitions": sorted(test["date"].astype(str).unique().tolist()),
                "features": FEATURES,
                "parameters": params,
                "code_version": registry.code_version(),
                "metrics": metrics.as_dict(),
            }
            model_json = bytes(booster.save_raw(raw_format="json"))
            path = registry.save_candidate(lake, version, model_json, description)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "version": version,
            "path": path,
            "train_rows": len(train_rows),
            "test_rows": len(test),
            **{k: v for k, v in metrics.as_dict().items() if isinstance(v, float | int)},
        }
    )


def _candidate_of(lake: LakeResource, day: str) -> str:
    version = registry.latest_candidate(lake, day)
    if version is None:
        raise dg.Failure(f"no candidate model trained as of {day}: materialize models/candidate")
    return version


@dg.asset(
    key_prefix="models",
    name="evaluation",
    group_name="models",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[candidate_model],
    kinds={"xgboost"},
)
def model_evaluation(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """The day's candidate against the production model on the same later-in-time holdout:
    AUC-ROC, average precision, precision and recall at the review threshold, ROC and PR
    curves (PNG in analytics/model_performance/)."""
    from fraud_platform.models.training import curves_png

    thresholds = Thresholds.from_env()
    filesystem, base = lake.filesystem()
    for day in partition_dates(context):
        version = _candidate_of(lake, day)
        frame = load_training_set(lake, day)
        test = frame[frame["split"] == "test"]
        labels = test["label"].to_numpy()
        booster = registry.load_booster(lake, version)
        scores = {"candidate": predict(booster, test)}
        production = registry.current_version(lake)
        if production is not None:
            scores["production"] = predict(registry.load_booster(lake, production), test)
        results = {
            name: evaluate(labels, s, thresholds.review).as_dict() for name, s in scores.items()
        }
        images = curves_png(labels, scores)
        folder = f"{base}/{registry.EVALUATIONS}/{version}"
        for kind, png in images.items():
            write_atomically(filesystem, f"{folder}/{kind}.png", png)
        frames = {
            registry.SCORES_FILE: pd.DataFrame(
                {
                    "label": labels,
                    "score": scores["candidate"],
                    "production_score": scores.get("production", np.full(len(labels), np.nan)),
                }
            ),
            registry.IMPORTANCE_FILE: importance(booster),
        }
        for name, frame in frames.items():
            table = pa.Table.from_pandas(frame, preserve_index=False)
            write_atomically(filesystem, f"{folder}/{name}", parquet_bytes(table))
        report = {"candidate": version, "production": production, "metrics": results}
        write_atomically(filesystem, f"{folder}/evaluation.json", json.dumps(report).encode())
    metadata = {
        "candidate": version,
        "production": production or "none",
        "metrics": dg.MetadataValue.json(results),
        "curves": dg.MetadataValue.md(images_md(images)),
        "path": lake.uri(registry.EVALUATIONS, version),
    }
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key_prefix="models",
    name="production",
    group_name="models",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[model_evaluation],
    kinds={"xgboost"},
)
def production_model(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Moves models/current to the day's candidate only when it passes layer 5 (the
    post-training suites: a sane model that beats production on the same holdout); otherwise
    production stays as it is. The suites run here again, so a promotion launched on its own
    is gated too. `fraud-platform model rollback` undoes a promotion."""
    filesystem, base = lake.filesystem()
    day = partition_dates(context)[-1]  # a backfill promotes, at most, its latest candidate
    version = _candidate_of(lake, day)
    report = read_json(filesystem, f"{base}/{registry.EVALUATIONS}/{version}/evaluation.json")
    if report is None:
        raise dg.Failure(f"{version} has no evaluation: materialize models/evaluation first")
    promote, reason = promotion_decision(lake, day)
    if promote:
        registry.promote(lake, version, reason)
    context.log.info("%s %s: %s", "promoted" if promote else "kept production;", version, reason)
    return dg.MaterializeResult(
        metadata={
            "candidate": version,
            "promoted": promote,
            "reason": reason,
            "current": registry.current_version(lake) or "none",
        }
    )


posttraining_checks = suite_checks(
    "models/evaluation", POSTTRAINING, set(), **Thresholds.from_env().suite_parameters()
)

defs = dg.Definitions(
    assets=[candidate_model, model_evaluation, production_model],
    asset_checks=posttraining_checks,
)
