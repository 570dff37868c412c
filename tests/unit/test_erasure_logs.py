"""The services' logs outlive the 30-day deadline, so an erasure redacts them: the user's
id becomes the pseudonym in the same file, a service appending to it goes on writing to the
file the erasure left, other users' lines and the audit log stay as they were."""

from fraud_platform.governance import erasure_files


def test_a_log_being_appended_to_is_redacted_in_place(tmp_path):
    logs = tmp_path / "logs"
    (logs / "audit").mkdir(parents=True)
    audit = logs / "audit" / "audit-2026-12-03.jsonl"
    audit.write_text('{"target": "u-9f3a"}\n')
    scorer = logs / "scorer.log"
    scorer.write_text("scored user_000042 at 0.91\nscored user_000007 at 0.02\n")
    with scorer.open("a") as service:  # the running scorer's handle
        inode = scorer.stat().st_ino
        assert erasure_files.redact_logs(logs, "user_000042", "u-9f3a") == 1
        service.write("scored user_000008 at 0.10\n")
    assert scorer.stat().st_ino == inode
    assert scorer.read_text() == (
        "scored u-9f3a at 0.91\nscored user_000007 at 0.02\nscored user_000008 at 0.10\n"
    )
    assert erasure_files.log_files(logs) == [scorer]
    assert audit.read_text() == '{"target": "u-9f3a"}\n'


def test_no_logs_nothing_to_redact(tmp_path):
    assert erasure_files.redact_logs(tmp_path / "absent", "user_000042", "u-9f3a") == 0
