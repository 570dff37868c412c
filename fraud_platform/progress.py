"""Progress of a long step inside a Dagster run, for whoever shows it in the same process
(the CLI's progress display): the step reports here, Dagster's event log gets its own line.
Without a listener, a report costs a logger call and reaches nobody."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_LOGGER = logging.getLogger("fraud_platform.progress")
_LOGGER.propagate = False
_LOGGER.setLevel(logging.INFO)


def report(message: str) -> None:
    _LOGGER.info(message)


class _Listener(logging.Handler):
    def __init__(self, callback: Callable[[str], None]) -> None:
        super().__init__()
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        self.callback(record.getMessage())


@contextmanager
def listening(callback: Callable[[str], None]) -> Iterator[None]:
    """While inside, every report goes to `callback`."""
    listener = _Listener(callback)
    _LOGGER.addHandler(listener)
    try:
        yield
    finally:
        _LOGGER.removeHandler(listener)
