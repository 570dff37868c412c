"""A task manager killed mid-stream: both jobs recover from their last checkpoint and the
outputs stay exact. A job manager killed: the jobs are restarted from their retained
checkpoints, with the same exact outputs.

Half the traffic goes in, the task manager (and its Python workers) gets SIGKILL while the
jobs work through it, the second half goes in while they are down, a new task manager
starts. Then the enriched
topic (read committed) holds every transaction exactly once, no gap and no duplicate, and the
Redis aggregates still equal the batch recomputed at their cut-off.
"""

from __future__ import annotations

import time

import pytest
import redis

from fraud_platform.batch.processing import process_transactions
from fraud_platform.streaming.control import FlinkJobs, deploy, restart
from fraud_platform.streaming.jobs import AGGREGATES, ENRICHMENT, Deployment

from .drill_support import kill, report
from .ingestion_support import TopicSet
from .streaming_support import (
    aggregates_against_batch,
    enriched,
    produce_raw,
    simulated_days,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_jobs_recover_from_a_killed_task_manager_with_exact_outputs(
    stack, settings, spark, tmp_path
):
    records, lake, dates = simulated_days(str(tmp_path / "lake"), seed=9)
    half = len(records) // 2
    topics = TopicSet(settings.kafka_bootstrap)
    deployment = Deployment(topic_prefix=topics.prefix, key_prefix=f"{topics.prefix}:",
                            lake_root=lake.root, checkpoint_interval="2s")  # fmt: skip
    flink = FlinkJobs(settings)
    names = [deployment.instance_name(job) for job in (ENRICHMENT, AGGREGATES)]
    try:
        produce_raw(settings, topics, records[:half])
        jobs = [deploy(settings, job, deployment) for job in (ENRICHMENT, AGGREGATES)]
        # Mid-stream: some output committed, a checkpoint taken, the rest still in flight.
        wait_for(lambda: len(enriched(topics, 1, timeout=0)) > 500, 120, "first output")
        wait_for(lambda: all(flink.status(j).last_checkpoint_ms for j in jobs), 60, "checkpoint")
        kill(*stack.select(["flink-taskmanager"]))
        # The second half arrives while the jobs are down: they recover onto a backlog on
        # every partition (as after a real outage), from their last checkpoint.
        produce_raw(settings, topics, records[half:])
        stack.up(["flink-taskmanager"])

        found = enriched(topics, len(records), timeout=300)
        assert sorted(found) == sorted(r["transaction_id"] for r in records)  # no gap, no dup
        for name in names:  # each went through a recovery (the metric shows it in seconds)
            (job,) = flink.find(name)
            wait_for(lambda jid=job["jid"]: flink.status(jid).restarts >= 1, 30, f"{name} restart")
        processed, _ = process_transactions(spark, lake, dates)
        compared, mismatches = aggregates_against_batch(
            settings, deployment, records, spark, processed
        )
        assert compared > 1_000 and mismatches == [], mismatches[:5]
    finally:
        for name in names:
            for job in flink.find(name):
                flink.cancel(job["jid"])
        client = redis.Redis.from_url(settings.redis_url)
        for key in client.scan_iter(f"{deployment.key_prefix}*", count=1000):
            client.delete(key)
        topics.delete()


def test_jobs_restart_from_their_retained_checkpoint_after_the_job_manager_is_killed(
    stack, settings, spark, tmp_path, capsys
):
    """Without job-manager HA, a killed job manager takes its jobs with it. The runbook: start
    it again (the task manager registers with it), then `stream restart` each job, which
    resumes from its newest retained checkpoint; the outputs stay exact."""
    records, lake, dates = simulated_days(str(tmp_path / "lake"), seed=11)
    half = len(records) // 2
    topics = TopicSet(settings.kafka_bootstrap)
    deployment = Deployment(topic_prefix=topics.prefix, key_prefix=f"{topics.prefix}:",
                            lake_root=lake.root, checkpoint_interval="2s")  # fmt: skip
    flink = FlinkJobs(settings)
    names = [deployment.instance_name(job) for job in (ENRICHMENT, AGGREGATES)]
    try:
        produce_raw(settings, topics, records[:half])
        jobs = [deploy(settings, job, deployment) for job in (ENRICHMENT, AGGREGATES)]
        wait_for(lambda: len(enriched(topics, 1, timeout=0)) > 500, 120, "first output")
        wait_for(lambda: all(flink.status(j).last_checkpoint_ms for j in jobs), 60, "checkpoint")
        began = time.monotonic()
        kill(*stack.select(["flink-jobmanager"]))
        produce_raw(settings, topics, records[half:])
        stack.up(["flink-jobmanager", "flink-taskmanager"])
        resumed = [restart(settings, job, deployment) for job in (ENRICHMENT, AGGREGATES)]
        assert all(resume and "/chk-" in resume for _, resume in resumed), resumed
        running = time.monotonic() - began

        found = enriched(topics, len(records), timeout=300)
        assert sorted(found) == sorted(r["transaction_id"] for r in records)  # no gap, no dup
        complete = time.monotonic() - began
        processed, _ = process_transactions(spark, lake, dates)
        compared, mismatches = aggregates_against_batch(
            settings, deployment, records, spark, processed
        )
        assert compared > 1_000 and mismatches == [], mismatches[:5]
        report(capsys, "Flink job manager SIGKILL", complete,
               f"none: {len(records)} transactions enriched exactly once, the windows equal "
               f"the batch (jobs running again after {running:.1f} s)")  # fmt: skip
    finally:
        for name in names:
            for job in flink.find(name):
                flink.cancel(job["jid"])
        client = redis.Redis.from_url(settings.redis_url)
        for key in client.scan_iter(f"{deployment.key_prefix}*", count=1000):
            client.delete(key)
        topics.delete()
