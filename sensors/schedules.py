"""The nightly batch: every day at 02:00 UTC, yesterday's partition end to end, the
warehouse included."""

import dagster as dg

from fraud_platform.partitions import daily

BATCH_GROUPS = ("raw", "processed", "features", "training", "models", "quality", "warehouse")

nightly_batch = dg.define_asset_job(
    "nightly_batch",
    selection=dg.AssetSelection.groups(*BATCH_GROUPS),
    partitions_def=daily,
    description="Raw to production model, the quality dashboard and the warehouse for one day "
    "(the schedule runs yesterday's).",
)

# For daily partitions the schedule targets the last complete day: at 02:00 on D, D - 1.
nightly_schedule = dg.build_schedule_from_partitioned_job(
    nightly_batch, hour_of_day=2, minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING
)

defs = dg.Definitions(jobs=[nightly_batch], schedules=[nightly_schedule])
