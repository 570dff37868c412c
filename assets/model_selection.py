"""Model selection: the full hyperparameter search (prequential validation), its own job.
Every candidate trained after it, the nightly's included, uses its choice."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.features import transaction_features
from assets.training import TrainingSetConfig
from fraud_platform.batch.metadata import preview, timed
from fraud_platform.models import registry
from fraud_platform.models.gate import Thresholds
from fraud_platform.models.selection import grid, select
from fraud_platform.models.training import FEATURES, build_training_set
from fraud_platform.progress import report
from fraud_platform.resources import FeaturesResource, LakeResource, SparkResource

# What the search keeps of a fold's rows beside the features: the evaluation's columns.
FOLD_COLUMNS = ["transaction_id", "label", "date", "user_id", "split"]


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
                folds[day] = frame.select(*FEATURES, *FOLD_COLUMNS).toPandas()
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


model_selection = dg.define_asset_job(
    "model_selection",
    selection=[hyperparameters],
    description="The full hyperparameter search (prequential validation); candidates train "
    "with its choice from then on.",
)

defs = dg.Definitions(assets=[hyperparameters], jobs=[model_selection])
