"""Label arrival: each new labels partition refreshes the training set, model and evaluation."""

import dagster as dg

from assets.models import candidate_model, model_evaluation, production_model
from assets.raw import raw_labels
from assets.training import training_set
from fraud_platform.partitions import daily

BACKFILL_TAG = "dagster/backfill"
NIGHTLY_JOB = "nightly_batch"  # sensors/schedules.py

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
    (a re-materialized partition refreshes again: its labels may have changed). Labels a
    backfill or the nightly job materialized are left alone: those runs train the model
    themselves, and a backfill of a month would otherwise ask for a month of models."""
    records = context.latest_materialization_records_by_partition(raw_labels.key)
    for partition, record in sorted(records.items()):
        if _trains_itself(context.instance.get_run_by_id(record.event_log_entry.run_id)):
            continue
        yield dg.RunRequest(
            run_key=f"labels-{partition}-{record.storage_id}",
            partition_key=partition,
            tags={"fraud/trigger": "label_arrival"},
        )
    context.advance_all_cursors()


def _trains_itself(run: dg.DagsterRun | None) -> bool:
    return run is not None and (BACKFILL_TAG in run.tags or run.job_name == NIGHTLY_JOB)


defs = dg.Definitions(jobs=[training_refresh], sensors=[label_arrival_sensor])
