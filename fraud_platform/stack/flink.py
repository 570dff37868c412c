"""A Flink session cluster (job manager + task manager) run from the PyFlink distribution.

FLINK_HOME stays the pyflink package of streaming/.venv untouched; the stack points Flink at
its own conf dir (generated config.yaml), lib dir (the distribution's jars plus the Kafka SQL
connector from Maven Central), log and pid dirs, all under the state dir.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from fraud_platform.config import LOOPBACK, Settings
from fraud_platform.stack.prerequisites import (
    STACK_DIR,
    STREAMING_DIR,
    java_home,
    pyflink_home,
    resolve_jars,
    streaming_python,
)
from fraud_platform.stack.process import StackError
from fraud_platform.stack.service import Service


class FlinkRuntime:
    """The files and environment both Flink processes and the SQL client share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.home / "flink"
        self.conf_dir = self.dir / "conf"
        self.lib_dir = self.dir / "lib"

    def prepare(self) -> None:
        self.java_home = java_home()
        self.flink_home = pyflink_home()
        connectors = resolve_jars(
            STACK_DIR / "maven" / "flink-connectors.pom.xml",
            self.settings.home / "jars" / "flink",
            transitive=False,
            what="Flink connector",
        )
        self._write_conf()
        self._link_lib(connectors)
        for sub in ("checkpoints", "savepoints"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def _write_conf(self) -> None:
        shutil.copytree(self.flink_home / "conf", self.conf_dir, dirs_exist_ok=True)
        shipped = yaml.safe_load((self.flink_home / "conf" / "config.yaml").read_text())
        ports = self.settings.ports
        conf = {
            "env.java.opts.all": shipped["env"]["java"]["opts"]["all"],
            "jobmanager.rpc.address": LOOPBACK,
            "jobmanager.rpc.port": ports.flink_rpc,
            "jobmanager.bind-host": LOOPBACK,
            "jobmanager.memory.process.size": "1024m",
            "jobmanager.execution.failover-strategy": "region",
            "taskmanager.host": LOOPBACK,
            "taskmanager.bind-host": LOOPBACK,
            # The three platform jobs take 3 slots; the rest leaves room for isolated
            # instances (a tenant, the tests, the benchmarks' floors) beside them.
            "taskmanager.numberOfTaskSlots": 8,
            "taskmanager.memory.process.size": "3072m",
            "parallelism.default": 1,
            "rest.address": LOOPBACK,
            "rest.bind-address": LOOPBACK,
            "rest.port": ports.flink_rest,
            "state.backend.type": "rocksdb",
            "execution.checkpointing.dir": (self.dir / "checkpoints").as_uri(),
            "execution.checkpointing.savepoint-dir": (self.dir / "savepoints").as_uri(),
            "execution.checkpointing.interval": self.settings.flink_checkpoint_interval,
            "execution.checkpointing.mode": "EXACTLY_ONCE",
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            "execution.checkpointing.num-retained": 3,
            # Uncompressed state files, so the card-number scan and the erasure's byte search
            # read what they hold (`fraud-platform pci scan`, `gdpr verify`).
            "state.backend.rocksdb.compression.per.level": "NO_COMPRESSION",
        }
        (self.conf_dir / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))

    def _link_lib(self, connectors: list[Path]) -> None:
        """Link the jars in place (never emptying the folder under a running cluster)."""
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        # flink-python (opt/) runs the Python operators of the PyFlink jobs.
        shipped = [
            *(self.flink_home / "lib").glob("*.jar"),
            *(self.flink_home / "opt").glob("flink-python-*.jar"),
        ]
        wanted = {j.name: j for j in [*shipped, *connectors]}
        for link in self.lib_dir.iterdir():
            if link.name not in wanted or link.resolve() != wanted[link.name]:
                link.unlink()
        for name, jar in wanted.items():
            if not (self.lib_dir / name).is_symlink():
                (self.lib_dir / name).symlink_to(jar)

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        return {
            **base,
            "JAVA_HOME": str(self.java_home),
            # Set explicitly: PyFlink resets FLINK_LIB_DIR to its own lib/ when FLINK_HOME is unset.
            "FLINK_HOME": str(self.flink_home),
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LIB_DIR": str(self.lib_dir),
            "FLINK_LOG_DIR": str(self.settings.home / "logs" / "flink"),
            "FLINK_PID_DIR": str(self.settings.home / "run" / "flink"),
        }

    def script(self, name: str) -> str:
        return str(self.flink_home / "bin" / name)


class _FlinkProcess(Service):
    script: str

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.runtime = FlinkRuntime(settings)
        self.rest = settings.flink_rest_url

    def prepare(self) -> None:
        self.runtime.prepare()

    def environment(self) -> dict[str, str]:
        return self.runtime.environment(super().environment())

    def command(self) -> list[str]:
        return ["bash", self.runtime.script(self.script), "start-foreground"]

    def _get(self, path: str) -> dict | None:
        try:
            response = httpx.get(f"{self.rest}{path}", timeout=2)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None


class FlinkJobManager(_FlinkProcess):
    name = "flink-jobmanager"
    script = "jobmanager.sh"

    @property
    def ports(self) -> dict[str, int]:
        ports = self.settings.ports
        return {"FRAUD_FLINK_REST_PORT": ports.flink_rest, "FRAUD_FLINK_RPC_PORT": ports.flink_rpc}

    def healthy(self) -> bool:
        return self._get("/overview") is not None

    def endpoint(self) -> str:
        return self.rest


class FlinkTaskManager(_FlinkProcess):
    name = "flink-taskmanager"
    script = "taskmanager.sh"
    needs = ("flink-jobmanager",)

    @property
    def ports(self) -> dict[str, int]:
        return {}  # RPC and data ports are picked free by Flink

    def healthy(self) -> bool:
        overview = self._get("/taskmanagers")
        return bool(overview and overview.get("taskmanagers"))

    def environment(self) -> dict[str, str]:
        # Thread-mode Python operators run in an interpreter embedded in this JVM (PEMJA),
        # which knows the streaming venv's executable but not its site-packages.
        return {**super().environment(), "PYTHONPATH": str(self.runtime.flink_home.parent)}

    def endpoint(self) -> str:
        return "registered with the job manager"


JOB_ID = re.compile(r"Job ID:\s*([0-9a-f]{32})")


def run_client(settings: Settings, argv: list[str], what: str, timeout: float = 180.0) -> str:
    """Run a PyFlink client script (streaming/.venv's Python, the stack's conf and lib dirs,
    so it plans against the jars the cluster runs); return the id of the last job it
    submitted, printed as `Job ID: <id>`."""
    runtime = FlinkRuntime(settings)
    runtime.prepare()
    env = runtime.environment({k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"})
    env["PYTHONPATH"] = str(STREAMING_DIR)
    try:
        done = subprocess.run(
            [str(streaming_python()), *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StackError(
            f"the {what} did not finish within {timeout:.0f}s; check `fraud-platform stack "
            "status` and `fraud-platform stack logs flink-jobmanager`"
        ) from None
    job_ids = JOB_ID.findall(done.stdout)
    if done.returncode != 0 or not job_ids:
        lines = (done.stdout + done.stderr).strip().splitlines()
        cause = next(
            (ln for ln in reversed(lines) if "Exception" in ln or "Error" in ln),
            lines[-1] if lines else "",
        )
        raise StackError(f"{what} failed (exit {done.returncode}): {cause.strip()}")
    return job_ids[-1]


def submit_sql(settings: Settings, sql: str, timeout: float = 180.0) -> str:
    """Submit SQL statements to the session cluster; return the id of the last job."""
    script = settings.home / "flink" / "submitted.sql"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(sql)
    argv = [str(STREAMING_DIR / "submit_sql.py"), str(script), settings.flink_rest_url]
    return run_client(settings, argv, "Flink SQL submission", timeout)


def wait_for_job(settings: Settings, job_id: str, states: set[str], timeout: float) -> str:
    """Poll the REST API until the job reaches one of `states`; return the state."""
    deadline = time.monotonic() + timeout
    state = "UNKNOWN"
    while time.monotonic() < deadline:
        response = httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}", timeout=5)
        if response.status_code == 200:
            state = response.json()["state"]
            if state in states:
                return state
        time.sleep(0.5)
    raise StackError(f"Flink job {job_id} is {state}, not {sorted(states)}, after {timeout:.0f}s")
