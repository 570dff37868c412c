"""Redis keeps its data across a crash: AOF with an fsync every second."""

import os
import signal
import time

import pytest

pytestmark = pytest.mark.integration


def test_a_write_survives_a_sigkill_and_restart(stack, resources, unique):
    client = resources["redis"].client()
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    key = f"test:aof:{unique}"
    client.hset(key, mapping={"amount": "127.50", "merchant": "merch_456"})
    time.sleep(1.5)  # past the one-second fsync; the RDB snapshot is minutes away

    redis_process = stack.services["redis"].process
    os.kill(redis_process.pid(), signal.SIGKILL)  # no shutdown save: only the AOF can help
    deadline = time.monotonic() + 10
    while redis_process.is_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_process.is_running()
    stack.up(["redis"])

    client = resources["redis"].client()
    assert client.hgetall(key) == {b"amount": b"127.50", b"merchant": b"merch_456"}
    client.delete(key)
