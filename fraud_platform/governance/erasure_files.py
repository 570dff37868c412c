"""The copies a query cannot reach: files that keep a user's bytes after the row is gone
(Redis's are in erasure_redis.py).

- the DuckDB file: a DELETE leaves the rows' bytes in free blocks, so the database is copied
  into a new file (`COPY FROM DATABASE`) and swapped in;
- Dagster's sqlite storage (event log, runs): every text value naming the user gets the
  pseudonym instead, then VACUUM drops the freed pages; its plain files (compute logs) too;
- the services' logs (kept 90 days, past the 30-day deadline): rewritten in place, so a
  service appending to its log keeps writing to the same file.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def compact_duckdb(path: str) -> int:
    """The DuckDB file rebuilt by copying every table into a new file, swapped in atomically:
    deleted rows' bytes stay in a DuckDB file's free blocks until then. A process holding the
    old file open keeps writing to it, so run the erasure while the warehouse loads are idle."""
    import duckdb

    source = Path(path)
    if not source.exists():
        return 0
    fresh = source.with_name(f".{source.name}.compact")
    fresh.unlink(missing_ok=True)
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{source}' AS old (READ_ONLY)")
        connection.execute(f"ATTACH '{fresh}' AS fresh")
        connection.execute("COPY FROM DATABASE old TO fresh")
        connection.execute("DETACH fresh")
        connection.execute("DETACH old")
    os.replace(fresh, source)
    # The copy read the old write-ahead log too; left beside the new file it would be replayed.
    source.with_name(source.name + ".wal").unlink(missing_ok=True)
    return 1


def sqlite_files(root: Path) -> list[Path]:
    """The sqlite databases under a Dagster home (runs, event logs, schedules)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.db") if p.is_file())


def redact_sqlite(path: Path, user_id: str, alias: str) -> int:
    """Every text value naming the user rewritten with the pseudonym, then VACUUM."""
    changed = 0
    with sqlite3.connect(path, timeout=30) as connection:
        tables = [r[0] for r in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]  # fmt: skip
        for table in tables:
            for column in connection.execute(f'PRAGMA table_info("{table}")').fetchall():
                name = column[1]
                cursor = connection.execute(
                    f'UPDATE "{table}" SET "{name}" = replace("{name}", ?, ?) '
                    f'WHERE typeof("{name}") = \'text\' AND instr("{name}", ?) > 0',
                    (user_id, alias, user_id),
                )
                changed += cursor.rowcount
    if changed:
        connection = sqlite3.connect(path, timeout=30)
        connection.execute("VACUUM")
        connection.close()
    return changed


def dagster_files_naming(root: Path, user_id: str) -> list[Path]:
    """The sqlite databases whose file (or write-ahead log) holds the user's id."""
    needle = user_id.encode()
    return [p for p in sqlite_files(root) if any(needle in f.read_bytes() for f in _with_wal(p))]


def _with_wal(path: Path) -> list[Path]:
    wal = path.with_name(path.name + "-wal")
    return [path, wal] if wal.exists() else [path]


def _redact_in_place(path: Path, user_id: str, alias: str) -> int:
    """A file some process may append to (a service's log, a running run's compute log), with
    the id replaced in the same inode: a swapped-in copy would leave the writer appending to
    the unlinked original."""
    try:
        with path.open("r+b") as stream:
            data = stream.read()
            hits = data.count(user_id.encode())
            if hits:
                stream.seek(0)
                stream.write(data.replace(user_id.encode(), alias.encode()))
                stream.truncate()
    except OSError:  # rotated away meanwhile
        return 0
    return hits


def log_files(logs: Path) -> list[Path]:
    """The services' logs; the audit log names users by pseudonym and is hash-chained."""
    if not logs.is_dir():
        return []
    return sorted(p for p in logs.rglob("*") if p.is_file() and "audit" not in p.parts)


def redact_logs(logs: Path, user_id: str, alias: str) -> int:
    return sum(_redact_in_place(p, user_id, alias) for p in log_files(logs))


def redact_dagster(root: Path, user_id: str, alias: str) -> int:
    """Dagster's sqlite storage and its plain files (compute logs) without the user's id."""
    changed = sum(redact_sqlite(p, user_id, alias) for p in dagster_files_naming(root, user_id))
    databases = {f for p in sqlite_files(root) for f in (p, *_sidecars(p))}
    plain = (
        [p for p in root.rglob("*") if p.is_file() and p not in databases] if root.is_dir() else []
    )
    return changed + sum(_redact_in_place(p, user_id, alias) for p in plain)


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
