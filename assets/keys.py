"""Asset keys of the external assets, shared by the modules that declare and depend on them."""

import dagster as dg

from fraud_platform.streaming.jobs import StreamingJob


def topic_asset_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", name])


def job_asset_key(job: StreamingJob) -> dg.AssetKey:
    return dg.AssetKey(["streaming", job.name])
