"""Label arrival: each new labels partition refreshes the training set, model and evaluation."""

import dagster as dg

from assets.models import candidate_model, model_evaluation, production_model
from assets.raw import raw_labels
from assets.training import training_set
from fraud_platform.partitions import daily

training_refresh = dg.define_asset_job(
    "training_refresh",
    selection=[training_set, candidate_model, model_evaluation, production_model],
    partitions_def=daily,
    description="Training set, candidate model, evaluation and promotion for one day.",
)


@dg.multi_asset_sensor(
    monitored_assets=[raw_labels.key],
    job=training_refresh,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def label_arrival_sensor(context: dg.MultiAssetSensorEvaluationContext):
    """One refresh per labels partition materialized since the last tick, however many landed
    (a re-materialized partition refreshes again: its labels may have changed)."""
    records = context.latest_materialization_records_by_partition(raw_labels.key)
    for partition, record in sorted(records.items()):
        yield dg.RunRequest(
            run_key=f"labels-{partition}-{record.storage_id}",
            partition_key=partition,
            tags={"fraud/trigger": "label_arrival"},
        )
    context.advance_all_cursors()


defs = dg.Definitions(jobs=[training_refresh], sensors=[label_arrival_sensor])
