"""An erasure that finishes or resumes: planned first, then carried out store by store.

The plan lists every place holding the user (nothing changes); each step then erases one
store and is recorded as done in the request's progress record,
`governance/erasure_progress/{request_id}.json` in the lake, which knows the user by the
pseudonym and the ids of the user's transactions (found once, before the lake is rewritten:
a rerun after the lake step could not find them again). A run that stops (a crash, a
failing step) is run again with the same request: it keeps the plan and skips the steps
done. Every step is audited with the pseudonym, a failing one with outcome `failed`.

The streaming jobs' state goes first (erasure_flink.py: they are told on fraud-erasures and
their checkpoints are waited for), so the aggregates job writes nothing of the user to Redis
after Redis is erased. Kafka topics holding personal data keep a record at most 30 days
(topics.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from fraud_platform.config import Settings
from fraud_platform.governance import audit, erasure_files, erasure_flink, erasure_redis, gdpr
from fraud_platform.governance.erasure_verify import byte_places, file_holds
from fraud_platform.lake import read_json, untracked, write_atomically

PROGRESS = "governance/erasure_progress"


@dataclass
class Scope:
    """What one erasure works on."""

    lake: Any
    redis: Any
    warehouse: Any
    user_id: str
    transactions: pa.Array
    merchants: list[str]
    dagster_home: Path
    settings: Settings
    track: Callable = untracked

    @property
    def alias(self) -> str:
        return gdpr.pseudonym(self.user_id)

    @property
    def duckdb(self) -> bool:
        return getattr(self.warehouse, "backend", "duckdb") == "duckdb"


def _flink(scope: Scope, erase: bool) -> int:
    if not erase:
        return erasure_flink.holding_files(scope.settings, scope.user_id)
    transactions = scope.transactions.to_pylist()
    return erasure_flink.forget(scope.settings, scope.user_id, transactions, scope.merchants)


def _lake(scope: Scope, erase: bool) -> int:
    return gdpr.scan_lake(scope.lake, scope.user_id, scope.transactions, erase, scope.track).total


def _warehouse(scope: Scope, erase: bool) -> int:
    return gdpr.scan_warehouse(scope.warehouse, scope.user_id, erase).total


def _redis(scope: Scope, erase: bool) -> int:
    return gdpr.scan_redis(scope.redis, scope.user_id, erase).total


def _redis_files(scope: Scope, erase: bool) -> int:
    return sum(erasure_redis.rewrite_persistence(scope.redis).values()) if erase else 1


def _redis_backups(scope: Scope, erase: bool) -> int:
    if erase:
        return erasure_redis.erase_redis_backups(scope.lake, scope.user_id)
    return len(erasure_redis.redis_backups_naming(scope.lake, scope.user_id))


def _warehouse_file(scope: Scope, erase: bool) -> int:
    if not scope.duckdb:
        return 0  # Snowflake: the deletion is the erasure
    return erasure_files.compact_duckdb(scope.warehouse.duckdb_path) if erase else 1


def _dagster(scope: Scope, erase: bool) -> int:
    if erase:
        return erasure_files.redact_dagster(scope.dagster_home, scope.user_id, scope.alias)
    return len(erasure_files.dagster_files_naming(scope.dagster_home, scope.user_id))


def _logs(scope: Scope, erase: bool) -> int:
    logs = scope.settings.home / "logs"
    if erase:
        return erasure_files.redact_logs(logs, scope.user_id, scope.alias)
    needle = scope.user_id.encode()
    return sum(file_holds(p, needle) for p in erasure_files.log_files(logs))


# In order: the streaming jobs' state, the lake (its Redis snapshots and warehouse exports
# among its files), Redis and then its files, the warehouse and then its file, Dagster's,
# the services' logs.
STEPS: dict[str, Callable[[Scope, bool], int]] = {
    "flink_state": _flink,
    "lake": _lake,
    "lake_redis_backups": _redis_backups,
    "redis": _redis,
    "redis_files": _redis_files,
    "warehouse": _warehouse,
    "warehouse_file": _warehouse_file,
    "dagster": _dagster,
    "logs": _logs,
}


def _path(lake, request_id: str) -> tuple[Any, str]:
    filesystem, base = lake.filesystem()
    return filesystem, f"{base}/{PROGRESS}/{request_id}.json"


def load_progress(lake, request_id: str) -> dict[str, Any] | None:
    filesystem, path = _path(lake, request_id)
    return read_json(filesystem, path)


def save_progress(lake, progress: dict[str, Any]) -> None:
    filesystem, path = _path(lake, progress["request_id"])
    write_atomically(filesystem, path, json.dumps(progress, indent=1).encode())


def plan(scope: Scope, request: dict[str, Any]) -> dict[str, Any]:
    """Every place holding the user: counted per step, and each file (or Redis database)
    the id's bytes are in; nothing is changed."""
    planned = {name: step(scope, False) for name, step in STEPS.items()}
    places = byte_places(scope.lake, scope.redis, scope.warehouse, scope.user_id,
                         scope.settings, scope.dagster_home, scope.track)  # fmt: skip
    return {"request_id": request["request_id"], "pseudonym": request["pseudonym"],
            "planned": planned, "places": places, "done": {},
            "transactions": scope.transactions.to_pylist(),
            "merchants": scope.merchants}  # fmt: skip


def _planned(scope: Scope, request: dict[str, Any], actor) -> dict[str, Any]:
    """The plan made, saved and audited (a plan that fails is audited as failed)."""
    details = {"request_id": request["request_id"]}
    try:
        progress = plan(scope, request)
    except Exception as error:
        failed = {**details, "error": type(error).__name__}
        audit.record("gdpr.erase.plan", request["pseudonym"], failed, actor=actor, outcome="failed")
        raise
    save_progress(scope.lake, progress)
    audit.record("gdpr.erase.plan", request["pseudonym"],
                 {**details, "planned": progress["planned"], "places": len(progress["places"])},
                 actor=actor)  # fmt: skip
    return progress


def _run_step(scope: Scope, progress: dict[str, Any], name: str, actor) -> None:
    target, details = progress["pseudonym"], {"request_id": progress["request_id"], "step": name}
    try:
        count = STEPS[name](scope, True)
    except Exception as error:
        audit.record("gdpr.erase.step", target, {**details, "error": type(error).__name__},
                     actor=actor, outcome="failed")  # fmt: skip
        raise gdpr.ErasureError(
            f"request {progress['request_id']}: step {name} failed ({error}); resume with "
            f"`fraud-platform gdpr erase --request {progress['request_id']}`"
        ) from error
    progress["done"][name] = count
    save_progress(scope.lake, progress)
    audit.record("gdpr.erase.step", target, {**details, "erased": count}, actor=actor)


def carry_out(
    lake,
    redis_client,
    warehouse,
    request_id: str,
    track=untracked,
    settings: Settings | None = None,
    dagster_home: Path | None = None,
) -> dict:
    """Plan (or resume the saved plan), erase each step not done, verify, conclude."""
    from fraud_platform.governance.rbac import Right, require

    everything, request = gdpr.pending(lake, request_id)
    actor = require(Right.ERASE_USER_DATA, "gdpr.erase", request["pseudonym"])
    settings = settings or Settings.from_env()
    dagster_home = dagster_home or settings.home / "dagster"
    user_id, progress = request["user_id"], load_progress(lake, request_id)
    if progress is None:  # found before the lake step rewrites them away
        transactions, merchants = gdpr.user_trail(lake, user_id)
    else:
        transactions = pa.array(progress["transactions"], pa.string())
        merchants = progress.get("merchants", [])
    scope = Scope(lake, redis_client, warehouse, user_id, transactions, merchants,
                  dagster_home, settings, track)  # fmt: skip
    if progress is None:
        progress = _planned(scope, request, actor)
    for name in STEPS:
        if name not in progress["done"]:
            _run_step(scope, progress, name, actor)
    left = gdpr.find_traces(lake, redis_client, warehouse, user_id, transactions, track,
                            settings, dagster_home).counts  # fmt: skip
    done = gdpr.conclude(lake, everything, request, progress["done"], left)
    if left:  # every step ran, yet something is left: a rerun sweeps every store again
        save_progress(lake, {**progress, "done": {}})
    else:
        kept = {k: v for k, v in progress.items() if k not in ("transactions", "merchants")}
        save_progress(lake, kept)
    audit.record("gdpr.erase", request["pseudonym"],
                 {"request_id": request_id, "erased": progress["done"], "traces_left": left},
                 actor=actor, outcome="ok" if not left else "incomplete")  # fmt: skip
    if left:
        raise gdpr.ErasureError(f"request {request_id}: traces left after erasure: {left}")
    return done
