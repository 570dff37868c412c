"""Models layer: hyperparameter search (its own job), candidate (XGBoost), evaluation against
production, promotion."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from assets.features import transaction_features
from assets.training import TrainingSetConfig, training_set
from fraud_platform.batch.metadata import partition_dates, preview, timed
from fraud_platform.lake import parquet_bytes, read_json, write_atomically
from fraud_platform.models import registry
from fraud_platform.models.evaluation import curves_png, evaluate_frame
from fraud_platform.models.gate import POSTTRAINING, Thresholds, promotion_decision
from fraud_platform.models.selection import grid, select
from fraud_platform.models.training import (
    FEATURES,
    Hyperparameters,
    build_training_set,
    importance,
    load_training_set,
    predict,
    train,
)
from fraud_platform.partitions import daily
from fraud_platform.plots import images_md
from fraud_platform.progress import report
from fraud_platform.quality.checks import suite_checks
from fraud_platform.resources import FeaturesResource, LakeResource, SparkResource

SCORED_COLUMNS = ["transaction_id", "label", "date", "user_id"]  # beside the scores


class SelectionConfig(TrainingSetConfig):
    """The search: as of a day (yesterday when empty), `folds` prequential folds of the
    training set's layout, the grid point with the best mean `metric` (average_precision or
    card_precision_at_k) wins."""

    as_of: str = ""
    folds: int = 4
    metric: str = "average_precision"


@dg.asset(
    key_prefix="models",
    name="hyperparameters",
    group_name="model_selection",
    deps=[transaction_features],
    kinds={"xgboost", "spark"},
    pool="spark",
)
def hyperparameters(
    context: dg.AssetExecutionContext,
    config: SelectionConfig,
    spark: SparkResource,
    lake: LakeResource,
    features: FeaturesResource,
) -> dg.MaterializeResult:
    """Prequential model selection over a small XGBoost grid (depth, rate, rounds, class
    weight). The choice is what every later candidate trains with, the nightly's included."""
    window = config.window(features)
    as_of = config.as_of or (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    metadata: dict = {}
    with timed(metadata):
        folds = {}
        for fold in range(config.folds):
            day = window.fold_as_of(as_of, fold)
            frame, _ = build_training_set(
                spark.session(), lake, day, window, config.remove_known_compromised
            )
            if frame is not None:
                folds[day] = frame.select(*FEATURES, *SCORED_COLUMNS, "split").toPandas()
        if not folds:
            raise dg.Failure(f"no transaction features for any validation fold before {as_of}")
        top_k = Thresholds.from_env().top_k

        def progress(done: int, total: int) -> None:
            context.log.info("trained %d of %d", done, total)
            report(f"trained {done} of {total} models ({len(folds)} folds)")

        selection = select(folds, config.metric, grid(), top_k, progress)
    record = {**selection.as_dict(), "window": window.__dict__, "top_k": top_k}
    path = registry.save_selection(lake, as_of, record)
    ranked = sorted(selection.results, key=lambda r: -(r[config.metric] or 0.0))
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "as_of": as_of,
            "metric": config.metric,
            "score": selection.score,
            "chosen": dg.MetadataValue.json(selection.chosen.as_dict()),
            "folds": ", ".join(selection.folds),
            "grid": preview([_rounded(r) for r in ranked]),
            "path": path,
        }
    )


def _rounded(row: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def candidate_version(as_of: str, params: dict) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return f"{as_of}-{registry.code_version().replace('+', '-')}-{digest}"


def chosen_hyperparameters(lake: LakeResource) -> tuple[Hyperparameters, dict]:
    """The latest search's choice (the defaults before any search), and where it came from."""
    selection = registry.latest_selection(lake)
    if selection is None:
        return Hyperparameters(), {"source": "defaults"}
    origin = {"source": "selection", "as_of": selection["as_of"], "metric": selection["metric"]}
    return Hyperparameters(**selection["chosen"]), {**origin, "score": selection["score"]}


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
    "models/evaluation",
    POSTTRAINING,
    set(),
    settings=lambda: Thresholds.from_env().suite_parameters(),
)

model_selection = dg.define_asset_job(
    "model_selection",
    selection=[hyperparameters],
    description="The full hyperparameter search (prequential validation); candidates train "
    "with its choice from then on.",
)

defs = dg.Definitions(
    assets=[hyperparameters, candidate_model, model_evaluation, production_model],
    asset_checks=posttraining_checks,
    jobs=[model_selection],
)
