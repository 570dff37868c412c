"""The right to be forgotten: a user's data erased from every store, verified, on the clock.

A request is received (`receive`) and tracked in the lake
(`governance/erasure_requests.json`) against the design's 30-day deadline. Erasing it
(`erase`) plans, then erases store by store, resuming a stopped run (erasure_plan.py): the
streaming jobs' state, the lake's every layer, its Redis snapshots and warehouse exports
(erasure_stores.py, erasure_files.py), Redis in every database with its AOF and RDB
rewritten, the warehouse's rows and then its DuckDB file, Dagster's storage. Then
`find_traces` searches every store again, by query and as bytes (erasure_verify.py). The
request is `verified` only if nothing is left, and from then on keeps only the user's
pseudonym (a keyed token, FRAUD_PSEUDONYM_KEY); the audit log knows the user by that
pseudonym alone. An `incomplete` request keeps the id, so the erasure can be run again.

The streaming jobs' keyed state is erased first, by a request the jobs act on
(erasure_flink.py). Kafka ages the user out instead: a topic holding personal data keeps a
record at most 30 days (topics.py; records cannot be deleted one by one).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fraud_platform.governance import audit
from fraud_platform.governance.erasure_stores import (  # noqa: F401  (the module's API)
    RECORDS,
    Footprint,
    scan_lake,
    scan_redis,
    scan_warehouse,
    user_trail,
    user_transactions,
)
from fraud_platform.governance.secrets import signing_key
from fraud_platform.lake import (
    read_json,
    untracked,
    write_atomically,
)

DEADLINE_DAYS = 30
REQUESTS = "governance/erasure_requests.json"
KEY_ENV = "FRAUD_PSEUDONYM_KEY"


class ErasureError(RuntimeError):
    """An erasure that could not be done or did not verify; the text says which store."""


def pseudonym(user_id: str) -> str:
    digest = hmac.new(signing_key(KEY_ENV), user_id.encode(), hashlib.sha256).hexdigest()
    return f"erased-{digest[:16]}"


# -- requests ------------------------------------------------------------------------------
def _load(lake) -> list[dict[str, Any]]:
    filesystem, base = lake.filesystem()
    return read_json(filesystem, f"{base}/{REQUESTS}") or []


def _save(lake, requests: list[dict[str, Any]]) -> None:
    filesystem, base = lake.filesystem()
    write_atomically(filesystem, f"{base}/{REQUESTS}", json.dumps(requests, indent=1).encode())


def receive(lake, user_id: str, now: datetime | None = None) -> dict[str, Any]:
    """Record a request; its deadline is 30 days on."""
    now = now or datetime.now(UTC)
    request = {
        "request_id": uuid.uuid4().hex[:12],
        "user_id": user_id,  # held only until the erasure; then the pseudonym alone
        "pseudonym": pseudonym(user_id),
        "received_at": now.isoformat(),
        "deadline": (now + timedelta(days=DEADLINE_DAYS)).isoformat(),
        "status": "pending",
    }
    _save(lake, [*_load(lake), request])
    audit.record("gdpr.request", request["pseudonym"], {"request_id": request["request_id"]})
    return request


def requests(lake, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every request, with the days left before its deadline (negative: overdue)."""
    now = now or datetime.now(UTC)
    return [
        {**{k: v for k, v in r.items() if k != "user_id"},
         "days_left": (datetime.fromisoformat(r["deadline"]) - now).days}
        for r in _load(lake)
    ]  # fmt: skip


def find_traces(lake, redis_client, warehouse, user_id: str, transactions=None,
                track=untracked, settings=None, dagster_home=None) -> Footprint:  # fmt: skip
    """Everything of the user any store still holds (empty: forgotten): the queries' rows and
    keys, and every place the id survives as bytes (governance/erasure_verify.py)."""
    from fraud_platform.config import Settings
    from fraud_platform.governance.erasure_verify import byte_places

    settings = settings or Settings.from_env()
    dagster_home = dagster_home or settings.home / "dagster"
    transactions = user_transactions(lake, user_id) if transactions is None else transactions
    found = Footprint()
    for part in (scan_lake(lake, user_id, transactions, False, track),
                 scan_redis(redis_client, user_id, False),
                 scan_warehouse(warehouse, user_id, False)):  # fmt: skip
        for store, count in part.counts.items():
            found.add(store, count)
    places = byte_places(lake, redis_client, warehouse, user_id, settings, dagster_home, track)
    for store, count in places.items():
        found.add(store, count)
    return found


# -- the requests' lifecycle -----------------------------------------------------------------
def pending(lake, request_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every request and the one to carry out; refused if unknown or done already."""
    everything = _load(lake)
    request = next((r for r in everything if r["request_id"] == request_id), None)
    if request is None:
        raise ErasureError(f"no erasure request {request_id!r} (see `fraud-platform gdpr status`)")
    if "user_id" not in request:
        raise ErasureError(f"request {request_id} was carried out already ({request['status']})")
    return everything, request


def conclude(lake, everything, request, erased: dict, left: dict) -> dict[str, Any]:
    """The request's outcome saved: verified (the id dropped) or incomplete (kept to resume)."""
    if not left:
        request.pop("user_id")
    request.update(
        status="verified" if not left else "incomplete",
        erased_at=datetime.now(UTC).isoformat(),
        erased=erased,
        traces_left=left,
    )
    _save(lake, everything)
    return request


def erase(lake, redis_client, warehouse, request_id: str, track=untracked, settings=None,
          dagster_home=None) -> dict:  # fmt: skip
    """Carry out a request: plan, erase store by store (resuming a stopped run), verify.
    See governance/erasure_plan.py."""
    from fraud_platform.governance.erasure_plan import carry_out

    return carry_out(lake, redis_client, warehouse, request_id, track, settings, dagster_home)
