"""Submit one streaming job to the session cluster (run with streaming/.venv's Python).

Usage: python -m fraud_streaming.submit SPEC.json

The spec (written by fraud_platform.streaming at deploy time) names the job, the cluster's
REST endpoint, the Flink settings of the job and, for a restart, the savepoint or retained
checkpoint to restore. Prints `Job ID: <id>` once the cluster has accepted the job.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import cloudpickle
from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment

import fraud_streaming
from fraud_streaming.jobs import PIPELINES

PACKAGE = Path(__file__).resolve().parent


def package_zip(directory: Path) -> Path:
    """The job's code as a zip holding fraud_streaming/ (a shipped directory would land on
    the workers' path by its content, not as the package). Written aside and renamed, so
    jobs submitted at the same time never read each other's half-written archive."""
    target = directory / "fraud_streaming.zip"
    partial = directory / f"fraud_streaming.{os.getpid()}.zip.partial"
    with zipfile.ZipFile(partial, "w") as archive:
        for source in sorted(PACKAGE.glob("*.py")):
            archive.write(source, f"fraud_streaming/{source.name}")
    os.replace(partial, target)
    return target


def configuration(spec: dict, code: Path) -> Configuration:
    rest = urlsplit(spec["flink"]["rest_url"])
    settings = {
        "execution.target": "remote",
        "rest.address": rest.hostname or "127.0.0.1",
        "rest.port": str(rest.port or 8081),
        "pipeline.name": spec["name"],
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "python.files": str(code),  # shipped to the workers, wherever the cluster runs
        **spec["flink"]["settings"],
    }
    if spec.get("restore_from"):
        settings["execution.state-recovery.path"] = spec["restore_from"]
    config = Configuration()
    for key, value in settings.items():
        config.set_string(key, str(value))
    return config


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    # The Python steps travel in the job by value, not as references to this package: a
    # task manager running them in thread mode imports a module once for its whole life, so
    # by reference a redeployed job would run the code the first job there imported.
    cloudpickle.register_pickle_by_value(fraud_streaming)
    # The Java constructor honours execution.target (remote); getExecutionEnvironment would
    # start a local mini cluster when run outside the `flink` command.
    config = configuration(spec, package_zip(Path(spec_path).parent))
    j_environment = get_gateway().jvm.org.apache.flink.streaming.api.environment
    env = StreamExecutionEnvironment(
        j_environment.StreamExecutionEnvironment(config._j_configuration)
    )
    t_env = StreamTableEnvironment.create(env)
    statements = PIPELINES[spec["job"]](env, t_env, spec)
    client = statements.execute().get_job_client()
    print(f"Job ID: {client.get_job_id()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
