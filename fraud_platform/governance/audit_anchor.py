"""The audit chain's anchor: where the kept chain starts and ends, written outside the log.

The hash chain proves no entry inside it was changed, but a chain cut at either end, or a
day file emptied or renamed away, still leaves a valid chain. Every append therefore also
writes (under the log's lock) an anchor: the oldest kept entry's seq and previous hash (the
base, moved only by retention) and the newest entry's seq and hash, with an HMAC so a cut
log cannot be given a fitting anchor without the key. Before it writes, an append checks
that the log still ends where the anchor says; when it does not, the cut is kept in the
anchor (`cuts`) and reported by every `verify` until an architect re-anchors
(`fraud-platform audit anchor --reset`). Putting an older anchor file back is the one cut a
file cannot show; the warehouse's copy of the log (loaded hourly) is the second anchor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Anchor:
    base_seq: int  # the oldest entry kept
    base_previous: str  # the hash that entry must chain from
    head_seq: int  # the newest entry written
    head_hash: str
    cuts: tuple[str, ...] = field(default=())  # cuts found by appends, until re-anchored

    @property
    def entries(self) -> int:
        return self.head_seq - self.base_seq + 1


class AnchorAltered(ValueError):
    """The anchor file does not verify: it was edited or damaged."""


def _mac(key: bytes, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def read(path: Path, key: bytes) -> Anchor | None:
    """The anchor, None when there is none; AnchorAltered when it does not verify."""
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
        fields = {k: v for k, v in stored.items() if k not in ("mac", "entries")}
        if not hmac.compare_digest(str(stored.get("mac")), _mac(key, fields)):
            raise AnchorAltered(f"the audit anchor {path} was altered: its MAC does not match")
        return Anchor(**{**fields, "cuts": tuple(fields.get("cuts", ()))})
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
        raise AnchorAltered(f"the audit anchor {path} is unreadable ({error})") from None


def write(path: Path, anchor: Anchor, key: bytes) -> None:
    """Replace the anchor atomically (a crash leaves the old or the new one, never half)."""
    fields = {**asdict(anchor), "cuts": list(anchor.cuts)}
    stored = {**fields, "entries": anchor.entries, "mac": _mac(key, fields)}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as out:
        out.write(json.dumps(stored, sort_keys=True, indent=1) + "\n")
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def tail_disagreement(anchor: Anchor, last: dict[str, Any] | None) -> str | None:
    """How the log's newest entry contradicts the anchor, None when it agrees. One entry past
    the anchor is a crash between the log's write and the anchor's, not a cut."""
    if last is None:
        return (
            f"the log is empty, but its anchor holds entries {anchor.base_seq} to "
            f"{anchor.head_seq}: its day files were emptied, renamed or removed"
        )
    if last["seq"] == anchor.head_seq and last["hash"] == anchor.head_hash:
        return None
    if last["seq"] == anchor.head_seq + 1 and last["previous"] == anchor.head_hash:
        return None
    if last["seq"] < anchor.head_seq:
        return (
            f"the log ends at entry {last['seq']}, but its anchor holds entries up to "
            f"{anchor.head_seq}: the last {anchor.head_seq - last['seq']} were cut"
        )
    return f"the log's newest entry {last['seq']} is not the anchored entry {anchor.head_seq}"


def head_disagreement(
    name: str, head: tuple[int, str], first: dict | None, last: dict | None, seen: dict[int, str]
) -> str | None:
    """How the log contradicts a head anchored elsewhere (seq, hash): a head older than the
    log's oldest entry was retired by retention and says nothing."""
    seq, digest = head
    if first is not None and seq < first["seq"]:
        return None
    if last is None or last["seq"] < seq:
        ends = "is empty" if last is None else f"ends at entry {last['seq']}"
        return f"the log {ends}, but the {name} holds entries up to {seq}: the log was cut"
    if seen.get(seq) != digest:
        return f"entry {seq} is not the entry the {name} holds: the log was rewritten"
    return None
