"""The Kafka topics as external assets: the sources at the top of the lineage graph.

Dagster does not produce these; producers, the validator, the Flink jobs and the scorer do.
Declaring them puts them in the graph (upstream of the lake assets that read them) with their
key, retention and partition count from the one topic catalog.
"""

import dagster as dg

from fraud_platform.topics import ALL_TOPICS


def topic_asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", name])


topic_specs = [
    dg.AssetSpec(
        key=topic_asset_key(topic.name),
        description=topic.purpose,
        group_name="kafka",
        kinds={"kafka"},
        metadata={
            "message_key": topic.key,
            "retention_days": topic.retention_days,
            "partitions": topic.partitions,
        },
    )
    for topic in ALL_TOPICS
]

defs = dg.Definitions(assets=topic_specs)
