"""The audit log's day files on disk: appends made durable, read back from the end, and
a torn last line (a write a crash cut short) set aside, every byte kept, so the chain can go on.

A day file is JSON lines, `audit-YYYY-MM-DD.jsonl`; callers hold `locked` while they write.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

TORN = "torn"  # the folder, inside the log's, where torn last lines are kept


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("audit-*.jsonl"))


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _last_line(segment: Path) -> tuple[int, bytes]:
    """The last line's offset and bytes (with its newline, if it has one), read from the end
    so an append costs the same however long the day's file is."""
    with segment.open("rb") as f:
        position = f.seek(0, os.SEEK_END)
        tail = b""
        while position > 0 and b"\n" not in tail[:-1]:
            step = min(4096, position)
            position -= step
            f.seek(position)
            tail = f.read(step) + tail
    start = tail[:-1].rfind(b"\n") + 1
    return position + start, tail[start:]


def _parsed(line: bytes) -> dict[str, Any] | None:
    """The entry a complete line holds; None for a torn or unreadable one."""
    if not line.endswith(b"\n"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "seq" in entry else None


def set_aside(directory: Path, segment: Path, offset: int, line: bytes) -> dict[str, Any]:
    """Move a torn last line out of the chain into `torn/`, keeping every byte of it."""
    kept = directory / TORN / f"{segment.stem}-{offset}.partial"
    kept.parent.mkdir(exist_ok=True)
    kept.write_bytes(line)
    with segment.open("r+b") as f:
        f.truncate(offset)
        os.fsync(f.fileno())
    return {
        "segment": segment.name,
        "offset": offset,
        "bytes": len(line),
        "sha256": hashlib.sha256(line).hexdigest(),
        "kept_at": f"{TORN}/{kept.name}",
    }


def tail(directory: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The newest entry, and the torn lines set aside to reach it."""
    torn = []
    for segment in reversed(segments(directory)):
        while segment.stat().st_size:
            offset, line = _last_line(segment)
            entry = _parsed(line)
            if entry is not None:
                return entry, torn
            if line.strip():
                torn.append(set_aside(directory, segment, offset, line))
            else:  # a blank last line: drop it
                with segment.open("r+b") as f:
                    f.truncate(offset)
    return None, torn


def first_entry(directory: Path) -> dict[str, Any] | None:
    return next((e for e in entries(directory) if "seq" in e), None)


def entries(directory: Path) -> Iterator[dict[str, Any]]:
    """Every entry, oldest first, each with `_segment` (its day file). A line that does not
    parse comes as `_unreadable`, or as `_torn` when it is the log's very last line."""
    days = segments(directory)
    for segment in days:
        lines = segment.read_bytes().splitlines(keepends=True)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            entry = _parsed(line if line.endswith(b"\n") else line + b"\n")
            location = f"{segment.name}:{number}"
            if entry is not None:
                yield {**entry, "_segment": segment.name}
            elif segment == days[-1] and number == len(lines):
                yield {"_torn": location}
            else:
                yield {"_unreadable": location}


def append(directory: Path, day: date, entry: dict[str, Any]) -> None:
    """Add one line to the day's file, on disk before this returns."""
    with (directory / f"audit-{day}.jsonl").open("a") as out:
        out.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
        out.flush()
        os.fsync(out.fileno())
