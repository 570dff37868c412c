"""Backups kept in the lake, and an inventory of every copy recovery can start from.

    backups/redis/{stamp}.rdb                   the feature store's RDB snapshot (hourly)
    backups/warehouse/{stamp}/{table}.parquet   every warehouse table (daily)
    backups/models/{stamp}/...                  the model registry: candidates, pointer, history

Beside them, on the machine: Redis writes an RDB every 5 minutes and an AOF fsynced every
second (stack/redis.py), and Flink keeps its last checkpoints and a savepoint of every planned
stop (stack/flink.py). The lake copies are what survives losing the machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from pyarrow import fs as pafs

from fraud_platform.governance import audit
from fraud_platform.lake import write_atomically
from fraud_platform.models.registry import CANDIDATES, CURRENT, HISTORY
from fraud_platform.warehouse.schema import TABLES, create_tables

REDIS_BACKUPS = "backups/redis"
WAREHOUSE_BACKUPS = "backups/warehouse"
MODEL_BACKUPS = "backups/models"


class BackupError(RuntimeError):
    """A backup that could not be taken; the text says why."""


@dataclass(frozen=True)
class Backup:
    """One copy taken: where it went, how many files and bytes."""

    kind: str
    path: str
    files: int
    bytes: int

    def audited(self) -> Backup:
        audit.record(f"backup.{self.kind}", self.path, {"files": self.files, "bytes": self.bytes})
        return self


STAMP = "%Y%m%dT%H%M%SZ"


def stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime(STAMP)


def stamped(path: str) -> datetime:
    """When a backup was taken, from its name (`.../{stamp}.rdb` or `.../{stamp}/...`)."""
    for part in reversed(path.replace(".rdb", "").split("/")):
        try:
            return datetime.strptime(part, STAMP).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise BackupError(f"{path} is not named by a backup stamp ({STAMP})")


def snapshot_redis(client, lake, timeout: float = 120) -> Backup:
    """A fresh RDB snapshot of Redis, copied into the lake.

    BGSAVE forks, so writes go on while the snapshot is written; the copy starts once Redis
    counts one more completed save than before this call (LASTSAVE's one-second resolution
    cannot tell two saves in the same second apart). The RDB is read from the folder Redis
    itself names (CONFIG GET dir), so the copy needs Redis's filesystem, not the stack's
    layout."""
    saves = client.info("persistence")["rdb_saves"]
    client.bgsave(schedule=True)  # queued behind an AOF rewrite instead of refused
    deadline = time.monotonic() + timeout
    while True:
        info = client.info("persistence")
        if not info["rdb_bgsave_in_progress"] and info["rdb_saves"] > saves:
            break
        if time.monotonic() > deadline:
            status = info["rdb_last_bgsave_status"]
            raise BackupError(f"Redis did not finish a snapshot within {timeout:.0f} s "
                              f"(last status: {status}; see Redis's log)")  # fmt: skip
        time.sleep(0.05)
    folder = client.config_get("dir")["dir"]
    rdb = Path(folder) / client.config_get("dbfilename")["dbfilename"]
    data = rdb.read_bytes()
    saved = client.lastsave()
    filesystem, base = lake.filesystem()
    path = f"{base}/{REDIS_BACKUPS}/{stamp(saved)}.rdb"
    write_atomically(filesystem, path, data)
    return Backup("redis", path, 1, len(data)).audited()


def export_warehouse(connection, lake, now: datetime) -> Backup:
    """Every warehouse table as Parquet under one stamp: a restore reloads these files."""
    filesystem, base = lake.filesystem()
    folder = f"{base}/{WAREHOUSE_BACKUPS}/{stamp(now)}"
    filesystem.create_dir(folder, recursive=True)
    create_tables(connection)  # a table not made yet is exported empty, not skipped
    size = 0
    for table in TABLES:
        query = f"SELECT {', '.join(table.column_names)} FROM {table.name}"
        if hasattr(connection, "sql"):  # DuckDB
            rows = connection.sql(query).to_arrow_table()
        else:  # the Snowflake connector
            cursor = connection.cursor()
            cursor.execute(query)
            rows = cursor.fetch_arrow_all(force_return_table=True)
        rows = rows.rename_columns(table.column_names)  # Snowflake's are upper case
        path = f"{folder}/{table.name}.parquet"
        pq.write_table(rows, path, filesystem=filesystem)
        size += filesystem.get_file_info(path).size
    return Backup("warehouse", folder, len(TABLES), size).audited()


def export_models(lake, now: datetime) -> Backup:
    """A copy of the model registry (every candidate, the production pointer, the promotion
    history) under one stamp, so a deleted or overwritten pointer can be put back."""
    filesystem, base = lake.filesystem()
    target = f"{base}/{MODEL_BACKUPS}/{stamp(now)}"
    sources = [f"{base}/{CURRENT}", f"{base}/{HISTORY}"]
    selector = pafs.FileSelector(f"{base}/{CANDIDATES}", allow_not_found=True, recursive=True)
    sources += [i.path for i in filesystem.get_file_info(selector) if i.is_file]
    files = size = 0
    for source in sources:
        info = filesystem.get_file_info(source)
        if not info.is_file:
            continue
        destination = f"{target}/{source.removeprefix(base + '/')}"
        filesystem.create_dir(destination.rsplit("/", 1)[0], recursive=True)
        filesystem.copy_file(source, destination)
        files, size = files + 1, size + info.size
    if not files:
        raise BackupError(f"the model registry under {base}/models is empty: nothing to back up")
    return Backup("models", target, files, size).audited()


@dataclass(frozen=True)
class Holding:
    """What exists of one kind of backup: how many copies and the newest. A kind taken on a
    schedule is due: missing or stale (its newest copy older than two of its intervals) is a
    problem. The others are written on change or on a stop, and may rightly be absent."""

    kind: str
    taken: str
    where: str
    copies: int
    newest: datetime | None
    stale_after: timedelta | None = None

    def age(self, now: datetime) -> timedelta | None:
        return None if self.newest is None else now - self.newest

    def status(self, now: datetime) -> str:
        """ok, stale or missing for a scheduled kind; ok or none for the others."""
        if self.newest is None:
            return "none" if self.stale_after is None else "missing"
        if self.stale_after is not None and self.age(now) > self.stale_after:
            return "stale"
        return "ok"


def _local(kind: str, taken: str, folder: Path, pattern: str) -> Holding:
    found = list(folder.glob(pattern)) if folder.is_dir() else []
    newest = max((p.stat().st_mtime for p in found), default=None)
    when = None if newest is None else datetime.fromtimestamp(newest, UTC)
    return Holding(kind, taken, str(folder), len(found), when)


def _in_lake(kind: str, lake, prefix: str, interval: timedelta) -> Holding:
    """The copies under `prefix`: each entry right under it is one (a file or a folder)."""
    filesystem, base = lake.filesystem()
    selector = pafs.FileSelector(f"{base}/{prefix}", allow_not_found=True, recursive=True)
    files = [i for i in filesystem.get_file_info(selector) if i.is_file]
    copies = {f.path.removeprefix(f"{base}/{prefix}/").split("/")[0] for f in files}
    newest = max((f.mtime for f in files), default=None)
    when = None if newest is None else newest.astimezone(UTC)
    taken = "hourly" if interval == timedelta(hours=1) else "daily"
    return Holding(kind, taken, f"{base}/{prefix}", len(copies), when, 2 * interval)


def inventory(home: Path, lake) -> list[Holding]:
    """Every backup recovery can start from, read from the files alone: it works with every
    service down, which is when it is needed."""
    redis_data, flink = home / "redis" / "data", home / "flink"
    return [
        _local("redis RDB", "every 5 min if keys changed", redis_data, "*.rdb"),
        _local("redis AOF", "fsync every second", redis_data / "appendonly", "*.aof*"),
        _in_lake("redis snapshots (lake)", lake, REDIS_BACKUPS, timedelta(hours=1)),
        _local("flink checkpoints", "retained, last 3", flink / "checkpoints", "*/chk-*/_metadata"),
        _local("flink savepoints", "each planned stop", flink / "savepoints", "savepoint-*"),
        _in_lake("warehouse exports (lake)", lake, WAREHOUSE_BACKUPS, timedelta(days=1)),
        _in_lake("model registry exports (lake)", lake, MODEL_BACKUPS, timedelta(days=1)),
    ]
