"""The Kafka topics as external assets: the sources at the top of the lineage graph.

Dagster does not produce these; producers, the validator, the Flink jobs and the scorer do.
Declaring them puts them in the graph (upstream of the lake assets that read them, downstream
of the streaming job that writes them) with their key, retention and partition count from the
one topic catalog.
"""

import dagster as dg

from assets.keys import job_asset_key, topic_asset_key
from fraud_platform.streaming.jobs import JOBS
from fraud_platform.topics import ALL_TOPICS


def written_by(topic: str) -> list[dg.AssetKey]:
    """The streaming jobs that write a topic (its upstream in the graph)."""
    return [job_asset_key(job) for job in JOBS.values() if topic in job.writes]


topic_specs = [
    dg.AssetSpec(
        key=topic_asset_key(topic.name),
        description=topic.purpose,
        group_name="kafka",
        kinds={"kafka"},
        deps=written_by(topic.name),
        metadata={
            "message_key": topic.key,
            "retention_days": topic.retention_days,
            "partitions": topic.partitions,
        },
    )
    for topic in ALL_TOPICS
]

defs = dg.Definitions(assets=topic_specs)
