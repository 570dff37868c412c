"""The platform's one time partitioning: UTC days."""

import os

import dagster as dg

daily = dg.DailyPartitionsDefinition(
    start_date=os.environ.get("FRAUD_PARTITIONS_START", "2018-04-01"),  # the handbook's first day
    timezone="UTC",
)
