"""The right to be forgotten: a user's data erased from every store, verified, on the clock.

A request is received (`receive`) and tracked in the lake (`governance/erasure_requests.json`)
against the design's 30-day deadline. Erasing it (`erase`) removes the user from:
- Redis: the user's profile and window aggregates (`user:{id}:*`);
- the lake, every layer: each Parquet file holding a row of the user (by `user_id`, by the
  ids of the user's transactions, or by the user's id inside a dead letter's original Kafka
  key or record) is rewritten without those rows; text files (reports, metadata) get the id
  replaced by the user's pseudonym;
- the warehouse: the user's transactions, their predictions and the user's dimension row.
Then `find_traces` searches every store again. The request is `verified` only if nothing is
left, and from then on keeps only the user's pseudonym (a keyed token, FRAUD_PSEUDONYM_KEY);
the audit log knows the user by that pseudonym alone. An `incomplete` request keeps the id,
so the erasure can be run again.

Two stores age the user out instead: Kafka topics (7-day retention; records cannot be deleted
one by one) and the streaming job's keyed history state (pruned past its 30-day window).
Both are gone within the 30-day deadline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow.fs import FileType

from fraud_platform.governance import audit
from fraud_platform.governance.secrets import signing_key
from fraud_platform.lake import (
    PROCESSED_TRANSACTIONS_PATH,
    RAW_TRANSACTIONS,
    TEXT_SUFFIXES,
    lake_files,
    parquet_bytes,
    read_json,
    untracked,
    write_atomically,
)
from fraud_platform.warehouse.schema import create_tables

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


# -- the stores ----------------------------------------------------------------------------
@dataclass
class Footprint:
    """Where a user is found: rows or keys per store."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, store: str, count: int) -> None:
        if count:
            self.counts[store] = self.counts.get(store, 0) + count

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _avro_string(text: str) -> bytes:
    """How Avro writes a string (zig-zag varint length, then UTF-8): what to look for in a
    dead letter's original record."""
    data = text.encode()
    n, out = len(data) << 1, bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


def _rows_of(table: pa.Table, user_id: str, transactions: pa.Array) -> pa.Array:
    """A mask of the rows that belong to the user."""
    mask = pa.array([False] * table.num_rows)
    names = table.column_names
    if "user_id" in names:
        mask = pc.or_(mask, pc.fill_null(pc.equal(table["user_id"], user_id), False))
    if "transaction_id" in names and len(transactions):
        mask = pc.or_(mask, pc.fill_null(pc.is_in(table["transaction_id"], transactions), False))
    if "original_key" in names:
        key = pc.equal(table["original_key"], pa.scalar(user_id.encode(), pa.binary()))
        mask = pc.or_(mask, pc.fill_null(key, False))
    if "original_value" in names:
        encoded = _avro_string(user_id)
        inside = [v is not None and encoded in v for v in table["original_value"].to_pylist()]
        mask = pc.or_(mask, pa.array(inside))
    return mask


def _word(user_id: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(user_id)}(?![\w-])")


def user_transactions(lake, user_id: str) -> pa.Array:
    """The ids of the user's transactions, raw and processed (labels and predictions know a
    transaction only by its id)."""
    filesystem, base = lake.filesystem()
    found = []
    for path in (RAW_TRANSACTIONS.path, PROCESSED_TRANSACTIONS_PATH):
        info = filesystem.get_file_info(f"{base}/{path}")
        if info.type != FileType.Directory:
            continue
        data = ds.dataset(f"{base}/{path}", filesystem=filesystem, format="parquet",
                          partitioning="hive")  # fmt: skip
        table = data.to_table(columns=["transaction_id"], filter=ds.field("user_id") == user_id)
        found.append(table["transaction_id"].combine_chunks())
    return pc.unique(pa.concat_arrays(found)) if found else pa.array([], pa.string())


def scan_lake(lake, user_id: str, transactions: pa.Array, erase: bool,
              track=untracked) -> Footprint:  # fmt: skip
    """The user's rows and mentions in every lake file; with `erase`, rewritten without them."""
    filesystem, _ = lake.filesystem()
    footprint, word, alias = Footprint(), _word(user_id), pseudonym(user_id)
    for path, inside in track(lake_files(lake), "lake files"):
        layer = "lake:" + "/".join(inside.split("/")[:2])
        if path.endswith(".parquet"):
            table = pq.read_table(path, filesystem=filesystem)
            mask = _rows_of(table, user_id, transactions)
            hits = pc.sum(mask).as_py() or 0
            footprint.add(layer, hits)
            if hits and erase:
                kept = table.filter(pc.invert(mask))
                if kept.num_rows:
                    write_atomically(filesystem, path, parquet_bytes(kept))
                else:
                    filesystem.delete_file(path)
        elif path.endswith(TEXT_SUFFIXES):
            with filesystem.open_input_stream(path) as f:
                text = f.read().decode(errors="replace")
            hits = len(word.findall(text))
            footprint.add(layer, hits)
            if hits and erase:
                write_atomically(filesystem, path, word.sub(alias, text).encode())
    return footprint


def scan_redis(client, user_id: str, erase: bool, prefix: str = "") -> Footprint:
    pattern = prefix + "user:" + re.sub(r"([*?\[\]])", r"\\\1", user_id) + ":*"
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys and erase:
        client.delete(*keys)
    footprint = Footprint()
    footprint.add("redis", len(keys))
    return footprint


def scan_warehouse(warehouse, user_id: str, erase: bool) -> Footprint:
    literal = "'" + user_id.replace("'", "''") + "'"
    mine = f"SELECT transaction_id FROM transactions_fact WHERE user_id = {literal}"
    statements = {
        "model_predictions_fact": f"transaction_id IN ({mine})",
        "transactions_fact": f"user_id = {literal}",
        "users_dimension": f"user_id = {literal}",
    }  # predictions first: they find the user through the transactions
    footprint = Footprint()
    with warehouse.connect() as connection:
        create_tables(connection)
        cursor = connection.cursor()
        for table, where in statements.items():
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}")
            count = int(cursor.fetchone()[0])
            footprint.add(f"warehouse:{table}", count)
            if count and erase:
                cursor.execute(f"DELETE FROM {table} WHERE {where}")
    return footprint


def _sweep(lake, redis_client, warehouse, user_id: str, transactions: pa.Array,
           redis_prefix: str, erase: bool, track) -> Footprint:  # fmt: skip
    """Every store's footprint of the user, erased on the way with `erase`."""
    found = Footprint()
    for part in (scan_lake(lake, user_id, transactions, erase, track),
                 scan_redis(redis_client, user_id, erase, redis_prefix),
                 scan_warehouse(warehouse, user_id, erase)):  # fmt: skip
        for store, count in part.counts.items():
            found.add(store, count)
    return found


def find_traces(lake, redis_client, warehouse, user_id: str, transactions=None,
                redis_prefix: str = "", track=untracked) -> Footprint:  # fmt: skip
    """Everything of the user any store still holds (empty: forgotten)."""
    transactions = user_transactions(lake, user_id) if transactions is None else transactions
    return _sweep(lake, redis_client, warehouse, user_id, transactions, redis_prefix, False,
                  track)  # fmt: skip


# -- the erasure ---------------------------------------------------------------------------
def erase(lake, redis_client, warehouse, request_id: str, redis_prefix: str = "",
          track=untracked) -> dict:  # fmt: skip
    """Carry out a pending request in every store, then verify; returns the request."""
    from fraud_platform.governance.rbac import Right, require

    everything = _load(lake)
    request = next((r for r in everything if r["request_id"] == request_id), None)
    if request is None:
        raise ErasureError(f"no erasure request {request_id!r} (see `fraud-platform gdpr status`)")
    if "user_id" not in request:
        raise ErasureError(f"request {request_id} was carried out already ({request['status']})")
    actor = require(Right.ERASE_USER_DATA, "gdpr.erase", request["pseudonym"])
    user_id = request["user_id"]
    transactions = user_transactions(lake, user_id)
    erased = _sweep(lake, redis_client, warehouse, user_id, transactions, redis_prefix, True,
                    track)  # fmt: skip
    left = find_traces(lake, redis_client, warehouse, user_id, transactions, redis_prefix, track)
    if left.total == 0:
        request.pop("user_id")
    request.update(
        status="verified" if left.total == 0 else "incomplete",
        erased_at=datetime.now(UTC).isoformat(),
        erased=erased.counts,
        traces_left=left.counts,
    )
    _save(lake, everything)
    audit.record("gdpr.erase", request["pseudonym"],
                 {"request_id": request_id, "erased": erased.counts, "traces_left": left.counts},
                 actor=actor, outcome="ok" if left.total == 0 else "incomplete")  # fmt: skip
    if left.total:
        raise ErasureError(f"request {request_id}: traces left after erasure: {left.counts}")
    return request
