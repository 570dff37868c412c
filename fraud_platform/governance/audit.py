"""The audit log: who did what to which data, append-only, hash-chained and anchored.

Every entry carries the HMAC (FRAUD_AUDIT_KEY, see `secrets.signing_key`) of the previous
entry's hash and its own content, so changing, removing or reordering any entry breaks the
chain at that point, and without the key a forger cannot re-chain what follows. The chain's
two ends are anchored outside the log (`audit_anchor.py`), so a cut at either end, an emptied
day file or one renamed away is found too. `verify` walks the chain and names the first
problem.

Entries go to one JSON-lines file per UTC day under the platform's logs (FRAUD_AUDIT_DIR
moves it), appended under a file lock so concurrent processes (Dagster runs, the CLI, the
services) keep one chain. A write cut short by a crash leaves a torn last line: the next
append sets it aside (`torn/`), audits that, and goes on, so no command fails because of it.
The retention policy retires a day's file after 90 days (`retire`), moving the anchor's base.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraud_platform.config import Settings
from fraud_platform.governance import audit_anchor, audit_files
from fraud_platform.governance.audit_anchor import Anchor, AnchorAltered
from fraud_platform.governance.secrets import signing_key

GENESIS = "0" * 64
KEY_ENV = "FRAUD_AUDIT_KEY"


def audit_dir(settings: Settings | None = None) -> Path:
    return Path((settings or Settings.from_env()).audit_dir)


def anchor_path(settings: Settings | None = None) -> Path:
    return Path((settings or Settings.from_env()).audit_anchor)


def _digest(key: bytes, previous: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, (previous + canonical).encode(), hashlib.sha256).hexdigest()


def _base_of(entry: dict[str, Any] | None) -> tuple[int, str] | None:
    return None if entry is None else (entry["seq"], entry["previous"])


def _check_anchor(path: Path, key: bytes, last: dict | None) -> tuple[Anchor | None, list[str]]:
    """The anchor to extend, and what about it or the log's end is wrong (kept as cuts)."""
    try:
        anchor = audit_anchor.read(path, key)
    except AnchorAltered as error:
        return None, [str(error)]
    if anchor is None:
        return None, [] if last is None else [f"the audit anchor {path} was removed"]
    problem = audit_anchor.tail_disagreement(anchor, last)
    return anchor, [] if problem is None else [problem]


def _write(directory: Path, key: bytes, last: dict | None, fields: dict) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {
        **fields,
        "seq": 0 if last is None else last["seq"] + 1,
        "at": now.isoformat(),
        "previous": GENESIS if last is None else last["hash"],
    }
    entry = {**body, "hash": _digest(key, body["previous"], body)}
    audit_files.append(directory, now.date(), entry)
    return entry


def _fields(
    who: dict[str, str], action: str, outcome: str, details: dict, target: str = "audit log"
) -> dict[str, Any]:
    from fraud_platform.governance.pci import redact_value

    return {
        **who,
        "action": action,
        "target": redact_value(target),
        "outcome": outcome,
        "details": details,
    }


def record(
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
    *,
    actor=None,  # rbac.Actor; the current one by default
    outcome: str = "ok",
) -> dict[str, Any]:
    """Append one entry to the chain (after entries for any torn line set aside or cut
    found) and move the anchor's head to it; returns the entry."""
    from fraud_platform.governance.pci import redact_value
    from fraud_platform.governance.rbac import Actor

    actor = actor or Actor.current()
    settings = Settings.from_env()
    directory, path, key = audit_dir(settings), anchor_path(settings), signing_key(KEY_ENV)
    who = {"actor": actor.user, "role": actor.role}
    with audit_files.locked(directory):
        last, torn = audit_files.tail(directory)
        anchor, cuts = _check_anchor(path, key, last)
        pending = [_fields(who, "audit.torn_write", "set_aside", piece) for piece in torn]
        pending += [_fields(who, "audit.cut", "detected", {"problem": cut}) for cut in cuts]
        pending.append(_fields(who, action, outcome, redact_value(details or {}), target))
        if last is None and anchor is not None and anchor.entries == 0:  # all retired
            last = {"seq": anchor.head_seq, "hash": anchor.head_hash}
        kept = audit_files.first_entry(directory) if anchor is None else None
        base = (anchor.base_seq, anchor.base_previous) if anchor else _base_of(kept)
        for fields in pending:
            last = _write(directory, key, last, fields)
            base = base or _base_of(last)
        earlier = anchor.cuts if anchor else ()
        audit_anchor.write(path, Anchor(*base, last["seq"], last["hash"], (*earlier, *cuts)), key)
    return last


def entries(directory: Path | None = None) -> Iterator[dict[str, Any]]:
    """Every entry, oldest first (see `audit_files.entries`)."""
    return audit_files.entries(directory or audit_dir())


def retire(segment: Path) -> dict[str, Any]:
    """Delete the log's oldest day file, as the retention policy does, moving the anchor's
    base past it so the shorter chain still verifies; audited."""
    settings = Settings.from_env()
    directory, path, key = audit_dir(settings), anchor_path(settings), signing_key(KEY_ENV)
    with audit_files.locked(directory):
        segments = audit_files.segments(directory)
        if not segments or segments[0].resolve() != segment.resolve():
            raise ValueError(
                f"{segment.name} is not the audit log's oldest day file: "
                "day files are retired oldest first"
            )
        retired = [e for e in audit_files.entries(directory) if e.get("_segment") == segment.name]
        anchor = audit_anchor.read(path, key)
        segment.unlink()
        ends = [e for e in retired if "seq" in e]
        if anchor is not None and ends:
            moved = replace(anchor, base_seq=ends[-1]["seq"] + 1, base_previous=ends[-1]["hash"])
            audit_anchor.write(path, moved, key)
    return record("audit.retire", segment.name, {"entries": len(ends)})


@dataclass(frozen=True)
class Verification:
    entries: int
    problem: str | None  # the first break in the chain or cut in the log, None when it holds
    notes: tuple[str, ...] = field(default=())  # what holds but deserves a look (torn lines)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _link_problem(key: bytes, previous: dict | None, entry: dict[str, Any]) -> str | None:
    """What is wrong with `entry` as the successor of `previous`, None when nothing is."""
    seq = entry.get("seq")
    body = {k: v for k, v in entry.items() if k != "hash" and not k.startswith("_")}
    if previous is not None and (
        seq != previous["seq"] + 1 or entry.get("previous") != previous["hash"]
    ):
        return (
            f"entry {seq} does not follow entry {previous['seq']}: "
            "an entry was removed, inserted or reordered"
        )
    if not hmac.compare_digest(
        str(entry.get("hash")), _digest(key, entry.get("previous", ""), body)
    ):
        return f"entry {seq} was altered: its hash does not match its content"
    segment = entry.get("_segment")
    if segment and segment != f"audit-{str(entry.get('at'))[:10]}.jsonl":
        return (
            f"entry {seq} is in {segment} but was written on {entry['at'][:10]}: "
            "the day file was renamed"
        )
    return None


def _anchor_problems(anchor: Anchor | None, first: dict | None, last: dict | None) -> list[str]:
    if anchor is None:
        return [] if last is None else [f"the audit anchor {anchor_path()} is missing"]
    problems = list(anchor.cuts)
    if first is not None and _base_of(first) != (anchor.base_seq, anchor.base_previous):
        problems.append(
            f"the log starts at entry {first['seq']}, but its anchor starts it at entry "
            f"{anchor.base_seq}: its first entries were removed"
        )
    if not (last is None and anchor.entries == 0):
        problems.append(audit_anchor.tail_disagreement(anchor, last))
    return [p for p in problems if p]


def verify(
    chain: Iterable[dict[str, Any]] | None = None, heads: dict[str, tuple[int, str]] | None = None
) -> Verification:
    """Walk the chain (the log's entries by default) from its oldest kept entry, then hold
    its ends against the anchor file and any `heads` kept elsewhere (name: (seq, hash), as
    the warehouse's copy); the first problem is named."""
    key = signing_key(KEY_ENV)
    try:
        anchor = audit_anchor.read(anchor_path(), key)
    except AnchorAltered as error:
        return Verification(0, str(error))
    wanted = {seq for seq, _ in (heads or {}).values()}
    first, last, count, seen, notes = None, None, 0, {}, []
    for entry in entries() if chain is None else chain:
        if "_torn" in entry:
            notes.append(
                f"the last line ({entry['_torn']}) is a torn write: the next entry sets it aside"
            )
            continue
        if "_unreadable" in entry:
            return Verification(count, f"entry at {entry['_unreadable']} is not valid JSON")
        problem = _link_problem(key, last, entry)
        if problem:
            return Verification(count, problem, tuple(notes))
        if entry["seq"] in wanted:
            seen[entry["seq"]] = entry["hash"]
        first, last, count = first or entry, entry, count + 1
    problems = _anchor_problems(anchor, first, last) + [
        audit_anchor.head_disagreement(name, head, first, last, seen)
        for name, head in (heads or {}).items()
    ]
    kept = sorted((audit_dir() / audit_files.TORN).glob("*.partial"))
    if kept:
        notes.append(
            f"{len(kept)} torn line(s) set aside in {audit_dir() / audit_files.TORN} "
            "(audited as audit.torn_write)"
        )
    return Verification(count, next((p for p in problems if p), None), tuple(notes))


def anchor() -> Anchor | None:
    """The anchor as written (AnchorAltered when it does not verify)."""
    return audit_anchor.read(anchor_path(), signing_key(KEY_ENV))


def reanchor() -> dict[str, Any]:
    """Anchor the log as it now is, forgetting the cuts found (once they were looked into,
    or once after an upgrade from a log without an anchor); audited, the reset in the chain."""
    settings = Settings.from_env()
    path, key = anchor_path(settings), signing_key(KEY_ENV)
    try:
        forgotten = list(audit_anchor.read(path, key).cuts)
    except (AnchorAltered, AttributeError):  # altered, or none at all
        forgotten = []
    entry = record("audit.anchor_reset", "audit log", {"cuts_forgotten": forgotten})
    with audit_files.locked(audit_dir(settings)):
        head = audit_anchor.read(path, key)  # as the entry above (or a later one) left it
        base = _base_of(audit_files.first_entry(audit_dir(settings)))
        audit_anchor.write(path, Anchor(*base, head.head_seq, head.head_hash), key)
    return entry


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
