"""Whether a user is really gone: the user's id searched as BYTES in every copy, not only by
the queries the erasure runs (a deleted row or key can live on in a file).

Searched: every lake file (Parquet by its text and binary columns, as its pages are
compressed; every other file, Redis snapshots among them, by its bytes), the name of every
key in every Redis database, and the bytes of what the services keep on disk (pan_scan's
`service_files`: Redis's RDB and AOF, Flink's checkpoints and savepoints, the warehouse
folder, the logs), the DuckDB file itself, and Dagster's storage. The clear id is the
needle; Avro writes a string as a length and its UTF-8 bytes, so a record holding the id
holds these bytes too.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraud_platform.config import Settings
from fraud_platform.governance.erasure_redis import every_database, user_keys
from fraud_platform.governance.erasure_stores import RECORDS
from fraud_platform.governance.pan_scan import service_files
from fraud_platform.lake import lake_files, untracked


def _column_hits(column: pa.ChunkedArray, user_id: str) -> int:
    kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        needle = user_id.encode()
        return sum(1 for v in column.to_pylist() if v and needle in v)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        found = pc.match_substring(column, user_id)
        return int(pc.sum(pc.fill_null(found, False)).as_py() or 0)
    return 0


def stream_holds(stream, needle: bytes, chunk: int = 8 << 20) -> bool:
    """Whether the needle is in a stream, read piece by piece with an overlap."""
    tail = b""
    while piece := stream.read(chunk):
        if needle in tail + piece:
            return True
        tail = piece[-len(needle) :]
    return False


def lake_places(lake, user_id: str, track=untracked) -> dict[str, int]:
    filesystem, _ = lake.filesystem()
    found: dict[str, int] = {}
    for path, inside in track(lake_files(lake), "lake bytes"):
        if inside.startswith(RECORDS):
            continue  # the request itself, which drops the id once verified
        if path.endswith(".parquet"):
            table = pq.read_table(path, filesystem=filesystem)
            hits = sum(_column_hits(table[name], user_id) for name in table.column_names)
        else:
            with filesystem.open_input_stream(path) as f:
                hits = int(stream_holds(f, user_id.encode()))
        if hits:
            found[f"lake-bytes:{inside}"] = hits
    return found


def redis_places(client, user_id: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for db in every_database(client):
        keys = user_keys(db, user_id)
        if keys:
            found[f"redis:db{db.connection_pool.connection_kwargs.get('db', 0)}"] = len(keys)
    return found


def file_holds(path: Path, needle: bytes) -> bool:
    """Whether a file holds the bytes; a file removed meanwhile (a rotated log, a dropped
    checkpoint) holds nothing."""
    try:
        with path.open("rb") as stream:
            return stream_holds(stream, needle)
    except OSError:
        return False


def file_places(paths: list[Path], user_id: str, home: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in paths:
        if file_holds(path, user_id.encode()):
            where = str(path.relative_to(home)) if path.is_relative_to(home) else str(path)
            found[f"files:{where}"] = 1
    return found


def disk_files(settings: Settings, warehouse, dagster_home: Path | None) -> list[Path]:
    """The service files, the warehouse's own folder and Dagster's storage."""
    paths = set(service_files(settings))
    if getattr(warehouse, "backend", "duckdb") == "duckdb" and warehouse.duckdb_path:
        folder = Path(warehouse.duckdb_path).parent
        paths |= {p for p in folder.glob(Path(warehouse.duckdb_path).name + "*") if p.is_file()}
    if dagster_home is not None and dagster_home.is_dir():
        paths |= {p for p in dagster_home.rglob("*") if p.is_file()}
    return sorted(p for p in paths if RECORDS not in p.as_posix())  # a lake in that folder


def byte_places(lake, redis_client, warehouse, user_id: str, settings: Settings,
                dagster_home: Path | None, track=untracked) -> dict[str, int]:  # fmt: skip
    """Every place outside the queries' reach where the user's id survives."""
    return {
        **lake_places(lake, user_id, track),
        **redis_places(redis_client, user_id),
        **file_places(disk_files(settings, warehouse, dagster_home), user_id, settings.home),
    }
