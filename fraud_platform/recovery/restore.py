"""Putting a Redis snapshot back into a live Redis without stopping it.

The snapshot is loaded into a private redis-server of its own (a free loopback port, AOF off),
and every key it holds is copied into the live Redis with DUMP / RESTORE, its remaining TTL
kept. A key the live Redis already has is left alone: it was written after the restore
point, so it is the newer value (the feature store's writes are as-of stamped for the same
reason). The live Redis keeps serving and its AOF records the restored keys like any write,
so nothing about its own persistence changes; the snapshot need not come from this machine.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from fraud_platform.config import LOOPBACK
from fraud_platform.governance import audit
from fraud_platform.recovery.aggregates import AggregateRebuild, rebuild_aggregates
from fraud_platform.recovery.backups import REDIS_BACKUPS, BackupError, stamped
from fraud_platform.stack.prerequisites import require_binary
from fraud_platform.stack.service import free_port


@dataclass(frozen=True)
class RedisRestore:
    """What a restore did: keys put back, keys the live Redis already had (kept)."""

    snapshot: str
    keys_in_snapshot: int
    restored: int
    kept_live: int


def newest_redis_snapshot(lake) -> str:
    """The path of the newest Redis snapshot in the lake (stamps sort in time order)."""
    from pyarrow import fs as pafs

    filesystem, base = lake.filesystem()
    selector = pafs.FileSelector(f"{base}/{REDIS_BACKUPS}", allow_not_found=True)
    snapshots = sorted(i.path for i in filesystem.get_file_info(selector) if i.is_file)
    if not snapshots:
        raise BackupError(f"no Redis snapshot under {base}/{REDIS_BACKUPS}: take one with "
                          "`fraud-platform backup redis`")  # fmt: skip
    return snapshots[-1]


class SnapshotServer:
    """A redis-server of its own serving one RDB file, for as long as the `with` lasts."""

    def __init__(self, rdb: bytes, timeout: float = 60) -> None:
        self.rdb, self.timeout = rdb, timeout

    def __enter__(self) -> redis.Redis:
        self.folder = tempfile.TemporaryDirectory(prefix="redis-restore-")
        Path(self.folder.name, "snapshot.rdb").write_bytes(self.rdb)
        port = free_port()
        self.server = subprocess.Popen(
            [require_binary("redis-server", "redis-server"), "--bind", LOOPBACK,
             "--port", str(port), "--dir", self.folder.name, "--dbfilename", "snapshot.rdb",
             "--appendonly", "no", "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(host=LOOPBACK, port=port)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                client.ping()  # answers LOADING until the whole snapshot is in
                return client
            except (redis.ConnectionError, redis.BusyLoadingError) as error:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    message = f"the snapshot did not load into a redis-server: {error}"
                    raise BackupError(message) from error
                time.sleep(0.05)

    def __exit__(self, *_) -> None:
        self.server.kill()
        self.server.wait(10)
        self.folder.cleanup()


def _batches(keys: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


Progress = Callable[[int, int], None]  # (keys done, keys in the snapshot)


def restore_redis(live: redis.Redis, rdb: bytes, snapshot: str = "", batch: int = 1000,
                  progress: Progress = lambda *_: None) -> RedisRestore:  # fmt: skip
    """Copy every key of `rdb` that `live` lacks into `live`; `progress(done, total)` after
    each batch of keys."""
    restored = kept = done = 0
    with SnapshotServer(rdb) as source:
        total = source.dbsize()
        for keys in _batches(source.scan_iter(count=batch), batch):
            read = source.pipeline(transaction=False)
            for key in keys:
                read.dump(key)
                read.pttl(key)
            answers = read.execute()
            write = live.pipeline(transaction=False)
            for key, dumped, ttl in zip(keys, answers[::2], answers[1::2], strict=True):
                if dumped is not None:  # expired while being read
                    write.restore(key, max(ttl, 0), dumped)  # no REPLACE: live keys win
            for answer in write.execute(raise_on_error=False):
                if isinstance(answer, redis.ResponseError) and "BUSYKEY" in str(answer):
                    kept += 1
                elif isinstance(answer, Exception):
                    raise answer
                else:
                    restored += 1
            done += len(keys)
            progress(done, total)
    result = RedisRestore(snapshot, total, restored, kept)
    audit.record("restore.redis", snapshot, vars(result))
    return result


def restore_redis_from_lake(live: redis.Redis, lake, snapshot: str = "",
                            progress: Progress = lambda *_: None) -> RedisRestore:  # fmt: skip
    """`restore_redis` of a snapshot in the lake: `snapshot`, or the newest when empty."""
    snapshot = snapshot or newest_redis_snapshot(lake)
    try:
        with lake.filesystem()[0].open_input_stream(snapshot) as stream:
            rdb = stream.read()
    except FileNotFoundError as error:
        raise BackupError(f"no Redis snapshot at {snapshot}") from error
    return restore_redis(live, rdb, snapshot, progress=progress)


def restore_online_store(live: redis.Redis, lake, snapshot: str = "",
                         progress: Progress = lambda *_: None,
                         ) -> tuple[RedisRestore, AggregateRebuild]:  # fmt: skip
    """The whole Redis runbook: the snapshot's keys back into `live`, then the windows of
    every entity with events since the snapshot rebuilt from the lake (the gap)."""
    restored = restore_redis_from_lake(live, lake, snapshot, progress)
    since = stamped(restored.snapshot)
    return restored, rebuild_aggregates(live, lake, int(since.timestamp() * 1000))
