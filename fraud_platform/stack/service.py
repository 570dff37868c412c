"""What every service of the local stack has: a process, its ports, a health probe."""

from __future__ import annotations

import os
import socket
import time
from abc import ABC, abstractmethod
from pathlib import Path

from fraud_platform.config import LOOPBACK, PROJECT_ROOT, Settings
from fraud_platform.stack.process import MARKER, ManagedProcess, StackError


class Service(ABC):
    name: str
    start_timeout: float = 90.0
    stop_timeout: float = 30.0
    needs: tuple[str, ...] = ()  # services that must be healthy before this one starts
    on_demand: bool = False  # started only when named (`stack up traffic`), stopped by all

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        home = settings.home
        self.dir = home / self.name
        self.process = ManagedProcess(
            self.name, home / "run" / f"{self.name}.pid", home / "logs" / f"{self.name}.log"
        )

    @property
    @abstractmethod
    def ports(self) -> dict[str, int]:
        """Ports it listens on, by the FRAUD_*_PORT variable that moves each."""

    @abstractmethod
    def prepare(self) -> None:
        """Install what is missing and write configuration; runs before every start."""

    @abstractmethod
    def command(self) -> list[str]:
        """The foreground command that runs the service."""

    @abstractmethod
    def healthy(self) -> bool:
        """A quick probe that answers True only when the service serves requests."""

    def after_start(self) -> None:  # noqa: B027 - optional hook, most services need none
        """Provisioning that needs the running service (e.g. topics)."""

    def endpoint(self) -> str:
        return ", ".join(f"{LOOPBACK}:{p}" for p in self.ports.values())

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env[MARKER] = str(self.settings.home)
        return env

    def cwd(self) -> Path:
        return PROJECT_ROOT

    def check_ports_free(self, grace: float = 3.0) -> None:
        """Fail on a port held by someone else; a process that just died gets `grace` seconds
        to let go of its sockets (they close a moment after it stops being alive)."""
        deadline = time.monotonic() + grace
        for variable, port in self.ports.items():
            while port_in_use(port) and time.monotonic() < deadline:
                time.sleep(0.2)
            if port_in_use(port):
                raise StackError(
                    f"port {port} for {self.name} on {LOOPBACK} is already taken by another "
                    f"process: stop it (`ss -ltnp 'sport = :{port}'` names it) or move "
                    f"{self.name} with {variable}=<free port>"
                )


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick), for a private server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((LOOPBACK, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bind:
        bind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            bind.bind((LOOPBACK, port))
        except OSError:
            return True
    return False
