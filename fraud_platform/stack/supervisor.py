"""Keeps a long-running Python service of the stack alive (the validator, the archiver, the
scorer): when it exits for any reason but a stop, it is started again after a backoff that
doubles from 1 s to 60 s (and resets after a minute of running), each restart recorded in
`run/<name>.restarts.json` (what `stack status` shows) and sent as an alert. A service that
crashes on one message therefore cannot stay down, and a service that cannot start at all does
not spin.

    python -m fraud_platform.stack.supervisor NAME -- COMMAND...

The stack runs it in the service's place: the pid file holds the supervisor, which shares
its process group with the service, so a stop (SIGTERM to the group) ends both.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from fraud_platform.config import Settings

FIRST_BACKOFF_S, MAX_BACKOFF_S, HEALTHY_RUN_S = 1.0, 60.0, 60.0


def restarts_file(settings: Settings, name: str) -> Path:
    return settings.home / "run" / f"{name}.restarts.json"


def restarts(settings: Settings, name: str) -> dict:
    """What the supervisor recorded of `name`'s restarts ({} before the first)."""
    try:
        return json.loads(restarts_file(settings, name).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _record(settings: Settings, name: str, code: int, backoff: float) -> dict:
    state = restarts(settings, name)
    state = {
        "restarts": state.get("restarts", 0) + 1,
        "last_exit_code": code,
        "last_restart_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backoff_s": backoff,
    }
    path = restarts_file(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    return state


def _alert(name: str, code: int, backoff: float, count: int) -> None:
    from fraud_platform.alerts import Alert, Alerter

    title = f"{name} exited with code {code}; restarting in {backoff:.0f} s (restart {count})"
    Alerter.from_env().send(Alert(f"stack/{name}", "ERROR", title))


def supervise(name: str, argv: list[str], settings: Settings) -> int:
    stopping = threading.Event()
    child: subprocess.Popen | None = None

    def stop(signum: int, _frame: object) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = FIRST_BACKOFF_S
    while not stopping.is_set():
        started = time.monotonic()
        child = subprocess.Popen(argv)
        code = child.wait()
        if stopping.is_set():
            return 0
        if time.monotonic() - started > HEALTHY_RUN_S:
            backoff = FIRST_BACKOFF_S
        state = _record(settings, name, code, backoff)
        print(f"supervisor: {name} exited with code {code}; restart in {backoff:.0f} s", flush=True)
        _alert(name, code, backoff, state["restarts"])
        stopping.wait(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_S)
    return 0


def main() -> None:
    name, separator, *argv = sys.argv[1:]
    if separator != "--" or not argv:
        sys.exit("usage: python -m fraud_platform.stack.supervisor NAME -- COMMAND...")
    sys.exit(supervise(name, argv, Settings.from_env()))


if __name__ == "__main__":
    main()
