"""The stack manager fails fast with one line naming the cause and the fix."""

import socket
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from fraud_platform.config import Ports, Settings
from fraud_platform.stack.manager import Stack
from fraud_platform.stack.prerequisites import java_home, resolve_jars
from fraud_platform.stack.process import StackError
from fraud_platform.stack.service import Service


def test_a_taken_port_names_the_port_and_the_variable(tmp_path, free_ports):
    port = free_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        stack = Stack(Settings(home=tmp_path, ports=Ports(redis=port)))
        with pytest.raises(StackError) as error:
            stack.up(["redis"])
    message = str(error.value)
    assert f"port {port} for redis" in message
    assert "FRAUD_REDIS_PORT" in message
    assert "\n" not in message
    assert not (tmp_path / "run" / "redis.pid").exists()


def test_missing_java_says_how_to_install_it(tmp_path):
    env = {"PATH": str(tmp_path)}  # no java here, and no JAVA_HOME
    with pytest.raises(StackError, match=r"Java not found .*apt-get install -y openjdk-17"):
        java_home(env, install=False)


def test_java_home_is_found_on_this_machine():
    assert (java_home(install=False) / "bin" / "java").exists()


def test_a_failed_download_names_maven_central(tmp_path):
    pom = tmp_path / "pom.xml"
    pom.write_text(
        """<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
        <groupId>t</groupId><artifactId>t</artifactId><version>1</version><packaging>pom</packaging>
        <dependencies><dependency><groupId>org.apache.kafka</groupId>
        <artifactId>kafka-clients</artifactId><version>0.0.0-does-not-exist</version>
        </dependency></dependencies></project>"""
    )
    with pytest.raises(StackError, match="could not download the test jars from Maven Central"):
        resolve_jars(pom, tmp_path / "jars", transitive=False, what="test")
    assert not (tmp_path / "jars" / ".pom.sha256").exists()


def test_unknown_service_lists_the_known_ones(tmp_path):
    with pytest.raises(StackError, match="unknown service 'zookeeper': choose from redis, kafka"):
        Stack(Settings(home=tmp_path)).select(["zookeeper"])


class _Crashing(Service):
    name = "crashing"
    start_timeout = 20.0
    ports: ClassVar[dict[str, int]] = {}

    def prepare(self) -> None:
        pass

    def command(self) -> list[str]:
        return [sys.executable, "-c", "print('bad configuration: no such table'); exit(3)"]

    def healthy(self) -> bool:
        return False


def test_a_service_dying_at_start_is_reported_with_its_log(tmp_path: Path):
    stack = Stack(Settings(home=tmp_path))
    with pytest.raises(StackError, match=r"crashing exited while starting.*no such table"):
        stack._start(_Crashing(stack.settings), progress=lambda _: None)


class _NeedsCrashing(_Crashing):
    name = "dependent"
    needs = ("crashing",)

    def command(self) -> list[str]:
        raise AssertionError("must not start when what it needs failed")


def test_a_failed_service_stops_what_needs_it_and_is_raised(tmp_path: Path):
    stack = Stack(Settings(home=tmp_path))
    stack.services = {
        "crashing": _Crashing(stack.settings),
        "dependent": _NeedsCrashing(stack.settings),
    }
    with pytest.raises(StackError, match="crashing exited while starting"):
        stack.up()
    assert not (tmp_path / "run" / "dependent.pid").exists()
