"""Bring the local stack up, down, and report on it.

`up` is idempotent: a service already running and healthy is left alone. Every wait has a
deadline, and a service that dies while starting is reported with the end of its log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from fraud_platform.config import Settings
from fraud_platform.stack.dagster import DagsterService
from fraud_platform.stack.demo import DocsService, TrafficService
from fraud_platform.stack.flink import FlinkJobManager, FlinkTaskManager
from fraud_platform.stack.ingestion import ArchiverService, ScorerService, ValidatorService
from fraud_platform.stack.kafka import KafkaService
from fraud_platform.stack.process import StackError, group_rss_bytes, kill_all, marked_pids
from fraud_platform.stack.redis import RedisService
from fraud_platform.stack.service import Service
from fraud_platform.stack.supervisor import restarts

SERVICE_TYPES: tuple[type[Service], ...] = (
    RedisService,
    KafkaService,
    FlinkJobManager,
    FlinkTaskManager,
    ValidatorService,
    ArchiverService,
    ScorerService,
    DagsterService,
    TrafficService,
    DocsService,
)
SERVICE_NAMES = tuple(t.name for t in SERVICE_TYPES)
GROUPS = {"flink": ("flink-jobmanager", "flink-taskmanager")}


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    healthy: bool
    pid: int | None
    rss_bytes: int
    endpoint: str
    restarts: int = 0  # by its supervisor, since the state folder was made


@dataclass(frozen=True)
class StartResult:
    name: str
    action: str  # "started" or "already running"
    seconds: float


Progress = Callable[[str], None]


class Stack:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.services = {t.name: t(self.settings) for t in SERVICE_TYPES}

    def select(self, names: Iterable[str] = (), on_demand: bool = True) -> list[Service]:
        """Services by name (or group name) in start order; for no names, all of them (the
        on-demand ones only if `on_demand`)."""
        wanted: set[str] = set()
        for name in names:
            if name in GROUPS:
                wanted.update(GROUPS[name])
            elif name in self.services:
                wanted.add(name)
            else:
                known = ", ".join([*SERVICE_NAMES, *GROUPS])
                raise StackError(f"unknown service {name!r}: choose from {known}")
        if not wanted:
            return [s for s in self.services.values() if on_demand or not s.on_demand]
        return [s for n, s in self.services.items() if n in wanted]

    def up(
        self, names: Iterable[str] = (), progress: Progress = lambda _: None
    ) -> list[StartResult]:
        """Start the selected services concurrently, each after the services it needs.

        JVM start-ups dominate, so overlapping them roughly halves a warm start. A failure
        does not stop the others; the first error is raised once every start has settled.
        """
        selected = self.select(names, on_demand=False)
        with ThreadPoolExecutor(max_workers=len(selected) or 1) as pool:
            futures: dict[str, Future[StartResult]] = {}
            for service in selected:
                needs = [futures[n] for n in service.needs if n in futures]
                futures[service.name] = pool.submit(self._start_after, service, needs, progress)
            wait(futures.values())
        errors = [f.exception() for f in futures.values() if f.exception() is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures.values()]

    def _start_after(
        self, service: Service, needs: list[Future[StartResult]], progress: Progress
    ) -> StartResult:
        for need in needs:
            need.result()  # raises if what this service needs failed to start
        return self._start(service, progress)

    def _start(self, service: Service, progress: Progress) -> StartResult:
        began = time.monotonic()
        if service.process.is_running():
            progress(f"{service.name}: running, checking health")
            self._wait_healthy(service)
            return StartResult(service.name, "already running", time.monotonic() - began)
        service.check_ports_free()
        progress(f"{service.name}: preparing")
        service.prepare()
        progress(f"{service.name}: starting")
        service.process.spawn(service.command(), service.environment(), service.cwd())
        self._wait_healthy(service)
        progress(f"{service.name}: provisioning")
        service.after_start()
        return StartResult(service.name, "started", time.monotonic() - began)

    def _wait_healthy(self, service: Service) -> None:
        deadline = time.monotonic() + service.start_timeout
        while time.monotonic() < deadline:
            if service.healthy():
                return
            if not service.process.is_running():
                tail = " | ".join(service.process.tail(3)) or "no output"
                raise StackError(
                    f"{service.name} exited while starting (last log lines: {tail}); "
                    f"see {service.process.log_file}"
                )
            time.sleep(0.5)
        raise StackError(
            f"{service.name} did not become healthy within {service.start_timeout:.0f}s; "
            f"see {service.process.log_file}, then `fraud-platform stack down` and retry"
        )

    def down(self, names: Iterable[str] | None = None, progress: Progress = lambda _: None) -> None:
        """Stop `names`, or every service (the on-demand ones too) for None. An empty list
        stops none: a caller stopping what it started, having started nothing, stops nothing."""
        if names is not None:
            names = list(names)
            if not names:
                return
        selected = self.select(names or ())
        for service in reversed(selected):
            if service.process.pid() is not None:
                progress(f"{service.name}: stopping")
            service.process.stop(service.stop_timeout)
        if len(selected) == len(self.services):
            # Anything a service forked outside its process group still carries the marker.
            kill_all(marked_pids(str(self.settings.home)))

    def leftover_pids(self) -> list[int]:
        return marked_pids(str(self.settings.home))

    def status(self) -> list[ServiceStatus]:
        rows = []
        for service in self.services.values():
            pid = service.process.pid()
            running = service.process.is_running()
            rows.append(
                ServiceStatus(
                    name=service.name,
                    running=running,
                    healthy=running and service.healthy(),
                    pid=pid if running else None,
                    rss_bytes=group_rss_bytes(pid) if running and pid else 0,
                    endpoint=service.endpoint(),
                    restarts=restarts(self.settings, service.name).get("restarts", 0),
                )
            )
        return rows
