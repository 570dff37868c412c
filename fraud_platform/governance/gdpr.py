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
from fraud_platform.governance.erasure_files import every_database, user_keys
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
RECORDS = "governance/erasure_"  # the requests file and the progress records
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


def _false(rows: int) -> pa.Array:
    return pa.array([False] * rows, pa.bool_())  # typed: an empty list alone is null-typed


def _hits(found) -> pa.Array:
    """A comparison's result as a boolean mask; a null-typed column compares to nulls."""
    return _false(len(found)) if pa.types.is_null(found.type) else pc.fill_null(found, False)


def _rows_of(table: pa.Table, user_id: str, transactions: pa.Array) -> pa.Array:
    """A mask of the rows that belong to the user. Empty files and all-null columns (a
    warehouse export of a table with no rows is null-typed) match nothing."""
    mask = _false(table.num_rows)
    names, typed = table.column_names, lambda n: not pa.types.is_null(table[n].type)
    if "user_id" in names and typed("user_id"):
        mask = pc.or_(mask, _hits(pc.equal(table["user_id"], user_id)))
    if "transaction_id" in names and typed("transaction_id") and len(transactions):
        mask = pc.or_(mask, _hits(pc.is_in(table["transaction_id"], transactions)))
    if "original_key" in names and typed("original_key"):
        key = pc.equal(table["original_key"], pa.scalar(user_id.encode(), pa.binary()))
        mask = pc.or_(mask, _hits(key))
    if "original_value" in names and typed("original_value"):
        encoded = _avro_string(user_id)
        inside = [v is not None and encoded in v for v in table["original_value"].to_pylist()]
        mask = pc.or_(mask, pa.array(inside, pa.bool_()))
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
        if inside.startswith(RECORDS):
            continue  # the erasure's own records: the request keeps the id until verified
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


def scan_redis(client, user_id: str, erase: bool) -> Footprint:
    """The user's keys in every database of the server; with `erase`, deleted."""
    footprint = Footprint()
    for db in every_database(client):
        keys = user_keys(db, user_id)
        if keys and erase:
            db.delete(*keys)
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
