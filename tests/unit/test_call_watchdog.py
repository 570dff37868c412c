"""A Kafka client call that overruns its timeout restarts its process in place: the same pid,
a fresh image; a call that returns in time changes nothing."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, time
    from fraud_platform.messaging import CallWatchdog

    logging.basicConfig(level=logging.INFO)
    if sys.argv[1:] == ["again"]:
        print("restarted", os.getpid(), flush=True)
        sys.exit(0)
    print("first", os.getpid(), flush=True)
    dog = CallWatchdog([sys.executable, __file__, "again"], grace_s=0.2)
    with dog.calling("quick_call", 0.1):
        pass
    time.sleep(1.5)
    print("still the first", flush=True)
    with dog.calling("stuck_call", 0.1):
        time.sleep(30)  # as a C call blocked past its timeout
    print("never", flush=True)
    """
)


def test_an_overrun_call_restarts_the_process_in_place_and_a_quick_one_does_not(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=20, check=False)  # fmt: skip
    lines = done.stdout.split()
    assert done.returncode == 0, done.stderr
    assert lines[:2] == ["first", lines[1]] and "still the first" in done.stdout
    assert lines[-2:] == ["restarted", lines[1]]  # the same pid
    assert "never" not in done.stdout
    assert "stuck_call overran its timeout" in done.stderr and "quick_call" not in done.stderr
