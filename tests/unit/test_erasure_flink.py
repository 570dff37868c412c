"""Flink's part of an erasure when no job runs: a restore point holding the user stops the
step before anything is sent, naming the job; none holding it means nothing to erase."""

import json

import pytest

from fraud_platform.config import Settings
from fraud_platform.governance import erasure_flink


@pytest.fixture
def settings(platform_home, monkeypatch, free_ports):
    """No Flink cluster and no broker answer on these ports."""
    monkeypatch.setenv("FRAUD_FLINK_REST_PORT", str(free_ports()))
    monkeypatch.setenv("FRAUD_KAFKA_PORT", str(free_ports()))
    return Settings.from_env()


def restore_point(settings: Settings, job: str, content: bytes) -> None:
    """A retained checkpoint of an earlier run of the platform's `job` instance."""
    jobs = settings.home / "flink" / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    (jobs / f"{job}.json").write_text(json.dumps({"job_ids": [f"{job}-run"]}))
    checkpoint = settings.home / "flink" / "checkpoints" / f"{job}-run" / "chk-7"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state").write_bytes(b"\x00\x0c" + content + b"\x94")


def test_a_stopped_job_holding_the_user_stops_the_step_before_anything_is_sent(settings):
    restore_point(settings, "enrichment", b"user_000042")
    restore_point(settings, "aggregates", b"user_000007")
    assert erasure_flink.holding_files(settings, "user_000042") == 1
    with pytest.raises(erasure_flink.StateNotErased, match="fraud-enrichment job is not running"):
        erasure_flink.forget(settings, "user_000042", ["t1"], ["m1"])


def test_with_no_job_and_no_copy_there_is_nothing_to_erase(settings):
    restore_point(settings, "enrichment", b"user_000007")
    assert erasure_flink.holding_files(settings, "user_000042") == 0
    assert erasure_flink.forget(settings, "user_000042", ["t1"], ["m1"]) == 0


def test_the_request_names_the_user_its_transactions_and_merchants():
    body = json.loads(erasure_flink.request("u1", ["t1", "t2"], ["m1"]))
    assert body == {"user_id": "u1", "transaction_ids": ["t1", "t2"], "merchants": ["m1"]}


def test_an_earlier_stop_s_savepoint_the_registry_no_longer_names_is_found(settings):
    restore_point(settings, "enrichment", b"user_000007")
    savepoints = settings.home / "flink" / "savepoints"
    earlier = savepoints / "savepoint-enrich-0123456789ab"  # Flink: the job id's first 6
    earlier.mkdir(parents=True)
    (earlier / "_metadata").write_bytes(b"\x00user_000042\x00")
    (savepoints / "savepoint-other0-0123456789ab").mkdir()  # another instance's
    (savepoints / "savepoint-other0-0123456789ab" / "_metadata").write_bytes(b"user_000042")
    assert erasure_flink.holding_files(settings, "user_000042") == 1
    with pytest.raises(erasure_flink.StateNotErased, match="savepoint-enrich-"):
        erasure_flink.forget(settings, "user_000042", ["t1"], ["m1"])
