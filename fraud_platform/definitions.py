"""The Dagster entry point: every domain module's definitions merged, plus the resources.

Each module under assets/ and sensors/ exports its own `defs`; this file only merges them,
so adding a domain is one import here.
"""

import dagster as dg

from assets import (
    features,
    governance,
    kafka_topics,
    model_selection,
    models,
    processed,
    quality,
    raw,
    recovery,
    streaming,
    training,
    warehouse,
)
from fraud_platform.resources import build_resources
from sensors import alerts, labels, schedules
from sensors import audit as audit_sensors
from sensors import streaming as streaming_sensors

defs = dg.Definitions.merge(
    kafka_topics.defs,
    raw.defs,
    processed.defs,
    features.defs,
    training.defs,
    model_selection.defs,
    models.defs,
    quality.defs,
    streaming.defs,
    warehouse.defs,
    governance.defs,
    streaming_sensors.defs,
    schedules.defs,
    labels.defs,
    alerts.defs,
    audit_sensors.defs,
    recovery.defs,
    # A run's steps share one process, so one SparkSession and one import of the platform:
    # a process per step would start Spark again for each, which costs more than the step.
    dg.Definitions(resources=build_resources(), executor=dg.in_process_executor),
)
