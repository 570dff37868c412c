"""fraud_platform.definitions loads, validates, and each resource reaches its service."""

import os
import subprocess
import sys

import pytest

from fraud_platform.config import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_dagster_definitions_validate_passes(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_every_resource_reaches_its_service(stack):
    from fraud_platform.definitions import defs

    resources = defs.resources
    # s3 is the lake bucket's client (its lifecycle rules); test_remote_backends reaches it.
    assert set(resources) == {
        "kafka",
        "redis",
        "flink",
        "lake",
        "spark",
        "warehouse",
        "s3",
        "features",
    }
    assert "transactions-raw" in resources["kafka"].admin().list_topics(timeout=10).topics
    assert resources["redis"].client().ping()
    assert resources["flink"].overview()["taskmanagers"] >= 1
    filesystem, root = resources["lake"].filesystem()
    assert filesystem.get_file_info(root).type.name == "Directory"
    assert resources["spark"].session().range(10).count() == 10
    with resources["warehouse"].connect() as connection:
        assert connection.execute("select 42").fetchone() == (42,)


def test_kafka_topics_are_assets_in_the_lineage_graph():
    from fraud_platform.definitions import defs
    from fraud_platform.topics import ALL_TOPICS

    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {f"kafka/{t.name}" for t in ALL_TOPICS} <= keys
