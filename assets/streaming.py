"""The Flink jobs and the Redis key spaces they feed, as external assets.

Dagster does not run these; it deploys, stops and restarts them (the jobs below) and
observes them (sensors/streaming.py). Declaring them puts the hot path in the one lineage
graph: transactions-raw -> job -> transactions-enriched / Redis, upstream of what reads them.
"""

import dagster as dg

from assets.keys import job_asset_key, topic_asset_key
from fraud_platform.config import Settings
from fraud_platform.streaming import control
from fraud_platform.streaming.jobs import JOBS, Deployment, StreamingJob

job_specs = [
    dg.AssetSpec(
        key=job_asset_key(job),
        description=job.description,
        group_name="streaming",
        kinds={"flink", "python"},
        deps=[topic_asset_key(topic) for topic in job.reads],
        metadata={"pipeline_name": job.pipeline_name, "writes": ", ".join(job.writes)},
    )
    for job in JOBS.values()
]
key_space_specs = [
    dg.AssetSpec(
        key=dg.AssetKey(["redis", name]),
        description=f"Redis hashes `{pattern}` of the online feature store.",
        group_name="streaming",
        kinds={"redis"},
        deps=[job_asset_key(job)],
        metadata={"key_pattern": pattern},
    )
    for job in JOBS.values()
    for name, pattern in job.redis_key_spaces
]


class StreamingJobConfig(dg.Config):
    """Which streaming job (enrichment, aggregates or monitoring), and for an isolated instance (a
    tenant, a test) the prefix of its topics and Redis keys."""

    job: str = "enrichment"
    topic_prefix: str = ""
    key_prefix: str = ""

    def streaming_job(self) -> StreamingJob:
        if self.job not in JOBS:
            raise dg.Failure(f"unknown streaming job {self.job!r}; one of {sorted(JOBS)}")
        return JOBS[self.job]

    def deployment(self) -> Deployment:
        return Deployment(topic_prefix=self.topic_prefix, key_prefix=self.key_prefix)


@dg.op
def deploy_streaming_job(context: dg.OpExecutionContext, config: StreamingJobConfig) -> str:
    """Submit the job to the Flink session cluster unless it already runs."""
    job_id = control.deploy(Settings.from_env(), config.streaming_job(), config.deployment())
    context.log.info(f"{config.job} runs as Flink job {job_id}")
    return job_id


@dg.op
def stop_streaming_job(context: dg.OpExecutionContext, config: StreamingJobConfig) -> str:
    """Stop the job with a savepoint (the planned way down)."""
    location = control.stop(Settings.from_env(), config.streaming_job(), config.deployment())
    context.log.info(f"{config.job} stopped with savepoint {location}")
    return location


@dg.op
def restart_streaming_job(context: dg.OpExecutionContext, config: StreamingJobConfig) -> str:
    """Stop with a savepoint if running, then resume from the newest savepoint or checkpoint."""
    job_id, resumed = control.restart(
        Settings.from_env(), config.streaming_job(), config.deployment()
    )
    context.log.info(
        f"{config.job} runs as Flink job {job_id}, resumed from {resumed or 'scratch'}"
    )
    return resumed or ""


@dg.job(description="Deploy a streaming job (config: job).")
def streaming_deploy():
    deploy_streaming_job()


@dg.job(description="Stop a streaming job with a savepoint (config: job).")
def streaming_stop():
    stop_streaming_job()


@dg.job(description="Restart a streaming job from its newest savepoint or checkpoint.")
def streaming_restart():
    restart_streaming_job()


defs = dg.Definitions(
    assets=[*job_specs, *key_space_specs],
    jobs=[streaming_deploy, streaming_stop, streaming_restart],
)
