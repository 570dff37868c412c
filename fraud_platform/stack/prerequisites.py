"""What the stack needs before a service can start, installed when missing.

Debian packages (redis-server, a JDK, Maven) come from apt, the Kafka broker and the Flink
connector jars from Maven Central through the poms beside this file, and the Flink runtime
from the PyFlink distribution locked in streaming/uv.lock. Each step is skipped when its
result is already there, and each failure is one StackError naming the cause and the fix.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

from fraud_platform.config import PROJECT_ROOT
from fraud_platform.stack.process import StackError

STACK_DIR = Path(__file__).resolve().parent
STREAMING_DIR = PROJECT_ROOT / "streaming"
MIN_JAVA = 17
_apt_updated = False
_apt_lock = threading.Lock()


def run_command(argv: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except subprocess.TimeoutExpired:
        raise StackError(
            f"`{' '.join(argv[:3])} ...` did not finish within {timeout:.0f}s; "
            "check the network access to the package registry and rerun"
        ) from None


def _last_error(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln or "error" in ln.lower()]
    return (errors or lines or ["no output"])[0][:300]


def apt_install(package: str) -> None:
    """Install a Debian package, or explain how to when this process cannot."""
    with _apt_lock:  # services prepare concurrently; dpkg takes one install at a time
        _apt_install(package)


def _apt_install(package: str) -> None:
    global _apt_updated
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise StackError(
            f"Debian package {package!r} is missing and cannot be installed from here: "
            f"run `sudo apt-get install -y {package}` and rerun"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        run_command(["apt-get", "update", "-qq"], timeout=300, env=env)
        _apt_updated = True
    done = run_command(["apt-get", "install", "-y", "-qq", package], timeout=600, env=env)
    if done.returncode != 0:
        raise StackError(
            f"apt-get could not install {package!r} ({_last_error(done.stderr or done.stdout)}); "
            f"fix the apt sources and run `apt-get install -y {package}`"
        )


def require_binary(binary: str, package: str, install: bool = True) -> str:
    path = shutil.which(binary)
    if path is None and install:
        apt_install(package)
        path = shutil.which(binary)
    if path is None:
        raise StackError(f"{binary!r} not found: install the Debian package {package!r}")
    return path


def java_home(env: dict[str, str] | None = None, install: bool = True) -> Path:
    """The JDK the JVM services run on: JAVA_HOME if set, else the `java` on PATH (17+)."""
    env = dict(os.environ if env is None else env)
    candidates = []
    if env.get("JAVA_HOME"):
        candidates.append(Path(env["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java", path=env.get("PATH", ""))
    if on_path:
        candidates.append(Path(on_path).resolve())
    java = next((c for c in candidates if c.exists()), None)
    if java is None and install:
        apt_install("openjdk-17-jdk-headless")
        return java_home(env, install=False)
    if java is None:
        raise StackError(
            "Java not found (no JAVA_HOME and no `java` on PATH): Kafka and Flink need Java "
            f"{MIN_JAVA}+; install it with `apt-get install -y openjdk-17-jdk-headless` "
            "or point JAVA_HOME at a JDK"
        )
    version = run_command([str(java), "-version"], timeout=30).stderr
    match = re.search(r'version "(\d+)', version)
    if match is None or int(match.group(1)) < MIN_JAVA:
        raise StackError(
            f"{java} is not Java {MIN_JAVA}+ ({version.splitlines()[0] if version else '?'}); "
            f"point JAVA_HOME at a JDK {MIN_JAVA} or newer"
        )
    return java.parent.parent


def resolve_jars(pom: Path, dest: Path, transitive: bool, what: str) -> list[Path]:
    """Copy the pom's dependencies from Maven Central into `dest`, once per pom content."""
    stamp = dest / ".pom.sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return sorted(dest.glob("*.jar"))
    mvn = require_binary("mvn", "maven")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    done = run_command(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            f"-DoutputDirectory={dest}",
            f"-DexcludeTransitive={'false' if transitive else 'true'}",
        ],
        timeout=900,
    )
    if done.returncode != 0:
        raise StackError(
            f"could not download the {what} jars from Maven Central "
            f"({_last_error(done.stdout + done.stderr)}); check access to Maven Central "
            f"(or ~/.m2/settings.xml) and rerun `fraud-platform stack up`"
        )
    stamp.write_text(digest)
    return sorted(dest.glob("*.jar"))


def uv_binary() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise StackError("uv not found: install it with `pip install uv` and rerun")
    return uv


def streaming_python() -> Path:
    """The Python of streaming/.venv (PyFlink), synced from streaming/uv.lock when stale."""
    venv_python = STREAMING_DIR / ".venv" / "bin" / "python"
    stamp = STREAMING_DIR / ".venv" / ".uv.lock.sha256"
    digest = hashlib.sha256((STREAMING_DIR / "uv.lock").read_bytes()).hexdigest()
    if venv_python.exists() and stamp.exists() and stamp.read_text() == digest:
        return venv_python
    done = run_command(
        [uv_binary(), "sync", "--frozen", "--project", str(STREAMING_DIR)],
        timeout=900,
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
    )
    if done.returncode != 0:
        raise StackError(
            f"could not install the Flink environment in streaming/.venv "
            f"({_last_error(done.stderr)}); check access to PyPI and rerun"
        )
    stamp.write_text(digest)
    return venv_python


def pyflink_home() -> Path:
    """FLINK_HOME of the PyFlink distribution (bin/, lib/, opt/, conf/)."""
    python = streaming_python()
    sites = list((python.parent.parent / "lib").glob("python3*/site-packages/pyflink"))
    if not sites:
        raise StackError(
            "streaming/.venv has no pyflink: delete streaming/.venv and rerun `stack up`"
        )
    return sites[0]
