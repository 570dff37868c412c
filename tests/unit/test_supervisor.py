"""The stack's supervisor: a long-running service that exits is started again with backoff,
each restart recorded and alerted, and a stop ends the supervisor and its service."""

import json
import os
import signal
import subprocess
import sys
import time

from fraud_platform.config import Settings
from fraud_platform.stack.supervisor import restarts

# Dies with code 3 on its first run (it leaves a mark), then runs until stopped.
SERVICE = """
import pathlib, sys, time
mark = pathlib.Path(sys.argv[1])
if not mark.exists():
    mark.write_text("crashed once")
    sys.exit(3)
pathlib.Path(sys.argv[2]).write_text("up")
time.sleep(600)
"""


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_service_that_exits_is_restarted_recorded_and_alerted(tmp_path, alerts_file):
    home, up = tmp_path / "home", tmp_path / "up"
    env_home = {"FRAUD_PLATFORM_HOME": str(home), "FRAUD_ALERTS_FILE": str(alerts_file)}
    command = [sys.executable, "-c", SERVICE, str(tmp_path / "mark"), str(up)]
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "fraud_platform.stack.supervisor", "toy", "--", *command],
        env={**os.environ, **env_home},
        start_new_session=True,
    )
    try:
        wait_for(up.exists)  # the second run, after the first one crashed
        state = restarts(Settings(home=home), "toy")
        assert state["restarts"] == 1 and state["last_exit_code"] == 3
        [alert] = [json.loads(line) for line in alerts_file.read_text().splitlines()]
        assert alert["source"] == "stack/toy" and "exited with code 3" in alert["title"]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
    assert restarts(Settings(home=home), "toy")["restarts"] == 1  # a stop is no restart
