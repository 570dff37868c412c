"""What the fault drills share: killing a stack service as a crash would, and printing the
measured recovery beside the design's promise (RTO 15 minutes, RPO 5 minutes)."""

import os
import signal
import time

RTO_SECONDS, RPO_SECONDS = 15 * 60, 5 * 60


def kill(service) -> None:
    """SIGKILL a stack service's process group (a Flink process takes its Python workers
    along) and wait until it is gone, as a crash leaves it: the stack would take a process
    still dying for a running one."""
    os.killpg(service.process.pid(), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while service.process.is_running():
        assert time.monotonic() < deadline, f"{service.name} outlived SIGKILL"
        time.sleep(0.02)


def report(capsys, drill: str, recovery_s: float, lost: str) -> None:
    with capsys.disabled():
        print(f"\n[drill] {drill}: recovered in {recovery_s:.2f} s (RTO {RTO_SECONDS} s); "
              f"data lost: {lost} (RPO {RPO_SECONDS} s)")  # fmt: skip
