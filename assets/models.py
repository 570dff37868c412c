"""Models layer: candidate (XGBoost, with the latest search's hyperparameters), evaluation
against production, promotion."""

import hashlib
import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from assets.model_selection import hyperparameters
from assets.training import training_set
from fraud_platform.batch.metadata import partition_dates, timed
from fraud_platform.lake import parquet_bytes, write_atomically
from fraud_platform.models import registry
from fraud_platform.models.evaluation import curves_png, evaluate_frame
from fraud_platform.models.gate import POSTTRAINING, Thresholds, promotion_decision
from fraud_platform.models.selection import chosen_hyperparameters
from fraud_platform.models.training import (
    FEATURES,
    importance,
    load_training_set,
    predict,
    train,
)
from fraud_platform.partitions import daily
from fraud_platform.plots import images_md
from fraud_platform.quality.checks import suite_checks
from fraud_platform.resources import FeaturesResource, LakeResource

SCORED_COLUMNS = ["transaction_id", "label", "date", "user_id"]  # beside the scores


def candidate_version(as_of: str, params: dict) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return f"{as_of}-{registry.code_version().replace('+', '-')}-{digest}"


def _test_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["split"] == "test"]


@dg.asset(
    key_prefix="models",
    name="candidate",
    group_name="models",
    partitions_def=daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[training_set, hyperparameters],
    kinds={"xgboost"},
)
def candidate_model(
    context: dg.AssetExecutionContext, lake: LakeResource, features: FeaturesResource
) -> dg.MaterializeResult:
    """An XGBoost model trained on the day's training split with the chosen hyperparameters,
    stored with its metadata (periods, features, label delay, parameters, selection, code)."""
    thresholds = Thresholds.from_env()
    chosen, origin = chosen_hyperparameters(lake)
    metadata: dict = {}
    with timed(metadata):
        for day in partition_dates(context):
            frame = load_training_set(lake, day)
            booster, params = train(frame, chosen)
            test = _test_rows(frame)
            test = test.assign(score=predict(booster, test))
            metrics = evaluate_frame(test, "score", thresholds.review, thresholds.top_k)
            version = candidate_version(day, params)
            train_rows = frame[frame["split"] == "train"]
            description = {
                "version": version,
                "as_of": day,
                "training_partitions": sorted(train_rows["date"].astype(str).unique().tolist()),
                "test_partitions": sorted(test["date"].astype(str).unique().tolist()),
                "features": FEATURES,
                "label_delay_days": features.label_delay_days,
                "hyperparameters": chosen.as_dict(),
                "hyperparameters_from": origin,
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
            "hyperparameters": dg.MetadataValue.json({**chosen.as_dict(), **origin}),
            **{k: v for k, v in metrics.as_dict().items() if isinstance(v, float | int)},
        }
    )


def _candidate_of(lake: LakeResource, day: str) -> str:
    version = registry.latest_candidate(lake, day)
    if version is None:
        raise dg.Failure(f"no candidate model trained as of {day}: materialize models/candidate")
    return version


def metrics_table(results: dict[str, dict]) -> str:
    """The evaluation's headline figures per model, as a Markdown table."""
    rows = ["| model | AUC-ROC | average precision | card precision@k | frauds / rows |"]
    rows.append("|---|---|---|---|---|")
    for name, m in results.items():
        rows.append(
            f"| {name} | {m['auc_roc']:.4f} | {m['average_precision']:.4f} | "
            f"{m['card_precision_at_k']:.4f} (k={m['top_k']}) | {m['positives']} / {m['rows']} |"
        )
    return "\n".join(rows)


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
    """The day's candidate against the production model on the same test period (known
    compromised cards removed): AUC-ROC, average precision, card precision@k per day and on
    average, precision and recall at the review threshold; ROC, precision-recall and card
    precision curves (PNG in analytics/model_performance/)."""
    thresholds = Thresholds.from_env()
    filesystem, base = lake.filesystem()
    for day in partition_dates(context):
        version = _candidate_of(lake, day)
        test = _test_rows(load_training_set(lake, day))
        booster = registry.load_booster(lake, version)
        scored = test[SCORED_COLUMNS].assign(score=predict(booster, test))
        production = registry.current_version(lake)
        scored["production_score"] = (
            predict(registry.load_booster(lake, production), test)
            if production is not None
            else np.full(len(test), np.nan)
        )
        columns = {"candidate": "score", "production": "production_score"}
        if production is None:
            del columns["production"]
        results = {
            name: evaluate_frame(scored, column, thresholds.review, thresholds.top_k).as_dict()
            for name, column in columns.items()
        }
        images = curves_png(
            scored["label"].to_numpy(),
            {name: scored[column].to_numpy() for name, column in columns.items()},
            {name: m["card_precision_per_day"] for name, m in results.items()},
        )
        folder = f"{base}/{registry.EVALUATIONS}/{version}"
        for kind, png in images.items():
            write_atomically(filesystem, f"{folder}/{kind}.png", png)
        frames = {registry.SCORES_FILE: scored, registry.IMPORTANCE_FILE: importance(booster)}
        for name, frame in frames.items():
            table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
            write_atomically(filesystem, f"{folder}/{name}", parquet_bytes(table))
        report = {"candidate": version, "production": production, "metrics": results}
        write_atomically(filesystem, f"{folder}/evaluation.json", json.dumps(report).encode())
    return dg.MaterializeResult(
        metadata={
            "candidate": version,
            "production": production or "none",
            "summary": dg.MetadataValue.md(metrics_table(results)),
            "metrics": dg.MetadataValue.json(results),
            "curves": dg.MetadataValue.md(images_md(images)),
            "path": lake.uri(registry.EVALUATIONS, version),
        }
    )


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
    day = partition_dates(context)[-1]  # a backfill promotes, at most, its latest candidate
    version = _candidate_of(lake, day)
    if registry.evaluation_report(lake, version) is None:
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
    "models/evaluation",
    POSTTRAINING,
    set(),
    settings=lambda: Thresholds.from_env().suite_parameters(),
)

defs = dg.Definitions(
    assets=[candidate_model, model_evaluation, production_model],
    asset_checks=posttraining_checks,
)
