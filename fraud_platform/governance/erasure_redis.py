"""Redis's copies of a user: keys in every database, the AOF and RDB files the server keeps,
and the lake's RDB snapshots.

- Live: the user's keys deleted in every database, then the append-only file rewritten
  (BGREWRITEAOF) and a fresh RDB saved (BGSAVE), each waited for with a deadline, so neither
  file still holds them;
- the lake's snapshots (`backups/redis/*.rdb`): each one naming the user is loaded into a
  throwaway redis-server (the stack's binary) on a free loopback port, the user's keys
  deleted in every database, saved, and swapped in atomically.
"""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from fraud_platform.config import LOOPBACK
from fraud_platform.governance.pan_scan import on_database
from fraud_platform.lake import lake_files, write_atomically

REDIS_BACKUP_PREFIX = "backups/redis/"
TIMEOUT = 120.0


def _glob(user_id: str) -> str:
    return "*" + re.sub(r"([*?\[\]\\])", r"\\\1", user_id) + "*"


def _word(user_id: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(user_id)}(?![\w-])".encode())


def user_keys(client, user_id: str) -> list[bytes]:
    """The keys of one database that name the user as a whole word (`user:{id}:*` and any
    other key carrying the id)."""
    word = _word(user_id)
    return [k for k in client.scan_iter(match=_glob(user_id), count=1000) if word.search(k)]


def every_database(client) -> list:
    """A client on each database the server has (CONFIG GET databases, 16 by default)."""
    count = int(client.config_get("databases").get("databases", 16))
    return [on_database(client, db) for db in range(count)]


def delete_user_keys(client, user_id: str) -> int:
    """The user's keys deleted in every database of the server; how many there were."""
    deleted = 0
    for db in every_database(client):
        keys = user_keys(db, user_id)
        if keys:
            deleted += db.delete(*keys)
    return deleted


def _wait(client, counter: str, busy: str, before: int, timeout: float) -> None:
    """Until INFO persistence counts one more `counter` than `before` and nothing is `busy`."""
    deadline = time.monotonic() + timeout
    while True:
        info = client.info("persistence")
        if not info[busy] and info[counter] > before:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Redis did not finish {counter} within {timeout:.0f} s")
        time.sleep(0.05)


def rewrite_persistence(client, timeout: float = TIMEOUT) -> dict[str, int]:
    """The AOF rewritten from the live data set and a new RDB saved, waited for with a
    deadline: a deleted key survives in both files until then."""
    info = client.info("persistence")
    if info.get("aof_enabled"):
        if info["aof_rewrite_in_progress"]:  # began before the deletion, and refuses another
            _wait(client, "aof_rewrites", "aof_rewrite_in_progress", info["aof_rewrites"], timeout)
            info = client.info("persistence")
        client.bgrewriteaof()
        _wait(client, "aof_rewrites", "aof_rewrite_in_progress", info["aof_rewrites"], timeout)
        info = client.info("persistence")
    client.bgsave(schedule=True)
    _wait(client, "rdb_saves", "rdb_bgsave_in_progress", info["rdb_saves"], timeout)
    return {"aof_rewritten": int(bool(info.get("aof_enabled"))), "rdb_saved": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _erase_in_rdb(rdb: Path, user_id: str) -> int:
    """The user's keys deleted from an RDB file in place, through a throwaway server."""
    import redis

    from fraud_platform.stack.prerequisites import require_binary

    redis_server, port = require_binary("redis-server", "redis-server"), _free_port()
    command = [redis_server, "--port", str(port), "--bind", LOOPBACK, "--dir", str(rdb.parent),
               "--dbfilename", rdb.name, "--appendonly", "no", "--save", "",
               "--rdbcompression", "no", "--logfile", ""]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host=LOOPBACK, port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        deleted = delete_user_keys(client, user_id)
        client.save()
        return deleted
    finally:
        server.terminate()
        server.wait(timeout=30)


def redis_backups_naming(lake, user_id: str) -> list[tuple[str, bytes]]:
    """The lake's RDB snapshots holding the user's id, with their bytes (rdbcompression is
    off, so a key's name is plain in the file)."""
    filesystem, _ = lake.filesystem()
    found = []
    for path, inside in lake_files(lake):
        if inside.startswith(REDIS_BACKUP_PREFIX) and inside.endswith(".rdb"):
            with filesystem.open_input_stream(path) as f:
                data = f.read()
            if user_id.encode() in data:
                found.append((path, data))
    return found


def erase_redis_backups(lake, user_id: str) -> int:
    """Every lake RDB snapshot naming the user rewritten without the user's keys."""
    filesystem, _ = lake.filesystem()
    deleted = 0
    for path, data in redis_backups_naming(lake, user_id):
        with tempfile.TemporaryDirectory(prefix="gdpr-rdb-") as scratch:
            local = Path(scratch) / "dump.rdb"
            local.write_bytes(data)
            deleted += _erase_in_rdb(local, user_id)
            write_atomically(filesystem, path, local.read_bytes())
    return deleted
