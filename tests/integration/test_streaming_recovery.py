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


class MidStream:
    """Both jobs on isolated topics and keys, half of a simulated traffic in, output committed
    and a checkpoint taken: the moment each crash is drilled at. Leaves nothing behind."""

    JOBS = (ENRICHMENT, AGGREGATES)

    def __init__(self, settings, tmp_path, seed: int) -> None:
        self.settings = settings
        self.records, self.lake, self.dates = simulated_days(str(tmp_path / "lake"), seed=seed)
        self.topics = TopicSet(settings.kafka_bootstrap)
        self.deployment = Deployment(
            topic_prefix=self.topics.prefix, key_prefix=f"{self.topics.prefix}:",
            lake_root=self.lake.root, checkpoint_interval="2s",
        )  # fmt: skip
        self.flink = FlinkJobs(settings)
        self.names = [self.deployment.instance_name(job) for job in self.JOBS]

    def __enter__(self) -> MidStream:
        try:
            produce_raw(self.settings, self.topics, self.records[: len(self.records) // 2])
            jobs = [deploy(self.settings, job, self.deployment) for job in self.JOBS]
            wait_for(lambda: len(enriched(self.topics, 1, timeout=0)) > 500, 120, "output")
            wait_for(lambda: all(self.flink.status(j).last_checkpoint_ms for j in jobs), 60,
                     "checkpoint")  # fmt: skip
        except BaseException:
            self.__exit__()
            raise
        return self

    def send_the_rest(self) -> None:
        """The second half, sent while the jobs are down: they recover onto a backlog on
        every partition (as after a real outage)."""
        produce_raw(self.settings, self.topics, self.records[len(self.records) // 2 :])

    def assert_enriched_exactly_once(self) -> None:
        found = enriched(self.topics, len(self.records), timeout=300)
        assert sorted(found) == sorted(r["transaction_id"] for r in self.records)

    def assert_windows_equal_the_batch(self, spark) -> None:
        processed, _ = process_transactions(spark, self.lake, self.dates)
        compared, mismatches = aggregates_against_batch(
            self.settings, self.deployment, self.records, spark, processed
        )
        assert compared > 1_000 and mismatches == [], mismatches[:5]

    def __exit__(self, *_) -> None:
        for name in self.names:
            for job in self.flink.find(name):
                self.flink.cancel(job["jid"])
        client = redis.Redis.from_url(self.settings.redis_url)
        for key in client.scan_iter(f"{self.deployment.key_prefix}*", count=1000):
            client.delete(key)
        self.topics.delete()


def test_jobs_recover_from_a_killed_task_manager_with_exact_outputs(
    stack, settings, spark, tmp_path, capsys
):
    with MidStream(settings, tmp_path, seed=9) as stream:
        began = time.monotonic()
        kill(*stack.select(["flink-taskmanager"]))
        stream.send_the_rest()
        stack.up(["flink-taskmanager"])
        back = time.monotonic() - began
        stream.assert_enriched_exactly_once()
        complete = time.monotonic() - began
        for name in stream.names:  # each went through a recovery (the metric shows it in seconds)
            (job,) = stream.flink.find(name)
            wait_for(lambda jid=job["jid"]: stream.flink.status(jid).restarts >= 1, 30,
                     f"{name} restart")  # fmt: skip
        stream.assert_windows_equal_the_batch(spark)
        report(capsys, "Flink task manager SIGKILL", complete,
               f"none: {len(stream.records)} transactions enriched exactly once, the windows "
               f"equal the batch (the task manager started again after {back:.1f} s)")  # fmt: skip


def test_jobs_restart_from_their_retained_checkpoint_after_the_job_manager_is_killed(
    stack, settings, spark, tmp_path, capsys
):
    """Without job-manager HA, a killed job manager takes its jobs with it. The runbook: start
    it again (the task manager registers with it), then `stream restart` each job, which
    resumes from its newest retained checkpoint; the outputs stay exact."""
    with MidStream(settings, tmp_path, seed=11) as stream:
        began = time.monotonic()
        kill(*stack.select(["flink-jobmanager"]))
        stream.send_the_rest()
        stack.up(["flink-jobmanager", "flink-taskmanager"])
        resumed = [restart(settings, job, stream.deployment) for job in MidStream.JOBS]
        assert all(resume and "/chk-" in resume for _, resume in resumed), resumed
        running = time.monotonic() - began
        stream.assert_enriched_exactly_once()
        complete = time.monotonic() - began
        stream.assert_windows_equal_the_batch(spark)
        report(capsys, "Flink job manager SIGKILL", complete,
               f"none: {len(stream.records)} transactions enriched exactly once, the windows "
               f"equal the batch (jobs running again after {running:.1f} s)")  # fmt: skip
