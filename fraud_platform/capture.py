"""A long task's chatter (Dagster's event log, Spark's JVM, library warnings) into a log file,
so the console keeps only what a person reads: progress and results.

Both levels are redirected: Python's sys.stdout and sys.stderr (Dagster's loggers write
there, whatever stream they are) and the process's file descriptors 1 and 2 (the JVM that
Spark starts inherits them, and writes there without passing through Python).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def _writes_to_fd_2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test runner's buffer, say
        return False


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Everything written to stdout and stderr goes to `log_path` (appended) while inside;
    the yielded stream is where stderr went before, for the progress display."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    real = _writes_to_fd_2(sys.stderr)
    terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1) if real else sys.stderr
    with open(log_path, "a", buffering=1) as log:
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield terminal
        finally:
            log.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            if real:
                terminal.close()
