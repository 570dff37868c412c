"""The audit log: who did what to which data, append-only and hash-chained.

Every entry carries the HMAC (FRAUD_AUDIT_KEY, see `secrets.signing_key`) of the previous
entry's hash and its own content, so changing, removing or reordering any entry breaks the
chain at that point, and without the key a forger cannot re-chain what follows. `verify`
walks the chain and names the first entry that does not hold.

Entries go to one JSON-lines file per UTC day under the platform's logs (FRAUD_AUDIT_DIR
moves it), appended under a file lock so concurrent processes (Dagster runs, the CLI, the
services) keep one chain. The retention policy deletes a day's file after 90 days, the
design's audit retention; the chain then starts at the oldest file kept.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraud_platform.config import Settings
from fraud_platform.governance.secrets import signing_key

GENESIS = "0" * 64
KEY_ENV = "FRAUD_AUDIT_KEY"


def audit_dir(settings: Settings | None = None) -> Path:
    configured = os.environ.get("FRAUD_AUDIT_DIR", "").strip()
    return (
        Path(configured)
        if configured
        else (settings or Settings.from_env()).home / "logs" / "audit"
    )


def _digest(key: bytes, previous: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, (previous + canonical).encode(), hashlib.sha256).hexdigest()


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("audit-*.jsonl"))


def _last_entry(directory: Path) -> dict[str, Any] | None:
    """The newest entry, read from the end of the newest non-empty day file."""
    for segment in reversed(_segments(directory)):
        with segment.open("rb") as f:
            f.seek(0, os.SEEK_END)
            position = f.tell()
            tail = b""
            while position > 0 and tail.count(b"\n") < 2:
                step = min(4096, position)
                position -= step
                f.seek(position)
                tail = f.read(step) + tail
        lines = [line for line in tail.splitlines() if line.strip()]
        if lines:
            return json.loads(lines[-1])
    return None


def record(
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
    *,
    actor=None,  # rbac.Actor; the current one by default
    outcome: str = "ok",
) -> dict[str, Any]:
    """Append one entry to the chain and return it."""
    from fraud_platform.governance.pci import redact_value
    from fraud_platform.governance.rbac import Actor

    actor = actor or Actor.current()
    directory = audit_dir()
    directory.mkdir(parents=True, exist_ok=True)
    key = signing_key(KEY_ENV)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        last = _last_entry(directory)
        now = datetime.now(UTC)
        body = {
            "seq": 0 if last is None else last["seq"] + 1,
            "at": now.isoformat(),
            "actor": actor.user,
            "role": actor.role,
            "action": action,
            "target": redact_value(target),
            "outcome": outcome,
            "details": redact_value(details or {}),
            "previous": GENESIS if last is None else last["hash"],
        }
        entry = {**body, "hash": _digest(key, body["previous"], body)}
        with (directory / f"audit-{now.date()}.jsonl").open("a") as out:
            out.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
            out.flush()
            os.fsync(out.fileno())
    return entry


def entries(directory: Path | None = None) -> Iterator[dict[str, Any]]:
    for segment in _segments(directory or audit_dir()):
        for number, line in enumerate(segment.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    yield {"_unreadable": f"{segment.name}:{number}"}


@dataclass(frozen=True)
class Verification:
    entries: int
    problem: str | None  # the first break in the chain, None when it holds

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(chain: Iterable[dict[str, Any]] | None = None) -> Verification:
    """Walk the chain (the log's entries by default) from its oldest kept entry; the first
    entry that fails is named."""
    key = signing_key(KEY_ENV)
    previous, count = None, 0
    for entry in entries() if chain is None else chain:
        if "_unreadable" in entry:
            return Verification(count, f"entry at {entry['_unreadable']} is not valid JSON")
        seq = entry.get("seq")
        body = {k: v for k, v in entry.items() if k != "hash"}
        if previous is not None and (seq != previous["seq"] + 1 or
                                     entry.get("previous") != previous["hash"]):  # fmt: skip
            return Verification(count, f"entry {seq} does not follow entry {previous['seq']}: "
                                "an entry was removed, inserted or reordered")  # fmt: skip
        if not hmac.compare_digest(
            str(entry.get("hash")), _digest(key, entry.get("previous", ""), body)
        ):
            return Verification(
                count, f"entry {seq} was altered: its hash does not match its content"
            )
        previous, count = entry, count + 1
    return Verification(count, None)


def fingerprint(settings: Settings) -> dict[str, Any]:
    """What an audited change is a change of: the platform's settings (no secrets live
    there) and the roles' rights."""
    from dataclasses import asdict

    from fraud_platform.governance.rbac import ROLES

    return {
        "settings": json.loads(json.dumps(asdict(settings), default=str)),
        "roles": {name: sorted(role.rights) for name, role in ROLES.items()},
    }


def note_changes(settings: Settings) -> list[dict[str, Any]]:
    """Audit what changed in the settings (config.change) and the roles (permission.change)
    since the last process that looked; returns the entries written."""
    directory = audit_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / ".fingerprint.json"
    now = fingerprint(settings)
    before = json.loads(state.read_text()) if state.exists() else None
    written = []
    if before is not None:
        for part, action in (("settings", "config.change"), ("roles", "permission.change")):
            keys = sorted(set(before[part]) | set(now[part]))
            changed = {
                key: {"from": before[part].get(key), "to": now[part].get(key)}
                for key in keys
                if before[part].get(key) != now[part].get(key)
            }
            if changed:
                written.append(record(action, part, changed))
    state.write_text(json.dumps(now, sort_keys=True))
    return written
