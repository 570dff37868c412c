"""Where a user is found, store by store, by query: each lake file's rows and mentions,
Redis keys in every database, warehouse rows; with `erase`, removed on the way.

A lake Parquet file holds a row of the user by `user_id`, by the ids of the user's
transactions, or by the user's id inside a dead letter's original Kafka key or Avro record;
it is rewritten without those rows. Text files (reports, metadata) get the id replaced by
the user's pseudonym. The erasure's own records (`governance/erasure_*`) are left alone: the
request keeps the id until the erasure is verified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow.fs import FileType

from fraud_platform.governance.erasure_redis import every_database, user_keys
from fraud_platform.lake import (
    PROCESSED_TRANSACTIONS_PATH,
    RAW_TRANSACTIONS,
    TEXT_SUFFIXES,
    lake_files,
    parquet_bytes,
    untracked,
    write_atomically,
)
from fraud_platform.warehouse.schema import create_tables

RECORDS = "governance/erasure_"  # the requests file and the progress records
ORIGINALS = "dead_letters/originals"  # the validator's oversized originals, whole


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


def avro_string(text: str) -> bytes:
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
        encoded = avro_string(user_id)
        inside = [v is not None and encoded in v for v in table["original_value"].to_pylist()]
        mask = pc.or_(mask, pa.array(inside, pa.bool_()))
    return mask


def _word(user_id: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(user_id)}(?![\w-])")


def user_trail(lake, user_id: str) -> tuple[pa.Array, list[str]]:
    """In one read of the raw and processed lake: the ids of the user's transactions (labels
    and predictions know a transaction only by its id) and the merchants the user bought
    from (their streaming state holds the user's transactions)."""
    filesystem, base = lake.filesystem()
    ids, merchants = [], []
    for path in (RAW_TRANSACTIONS.path, PROCESSED_TRANSACTIONS_PATH):
        if filesystem.get_file_info(f"{base}/{path}").type != FileType.Directory:
            continue
        data = ds.dataset(f"{base}/{path}", filesystem=filesystem, format="parquet",
                          partitioning="hive")  # fmt: skip
        columns = [c for c in ("transaction_id", "merchant_id") if c in data.schema.names]
        table = data.to_table(columns=columns, filter=ds.field("user_id") == user_id)
        ids.append(table["transaction_id"].combine_chunks())
        if "merchant_id" in columns:
            merchants += pc.unique(table["merchant_id"]).to_pylist()
    transactions = pc.unique(pa.concat_arrays(ids)) if ids else pa.array([], pa.string())
    return transactions, sorted({m for m in merchants if m is not None})


def user_transactions(lake, user_id: str) -> pa.Array:
    """The ids of the user's transactions, raw and processed."""
    return user_trail(lake, user_id)[0]


def _parquet_file(filesystem, path: str, user_id: str, transactions, erase: bool) -> int:
    """The user's rows of one file; with `erase`, the file rewritten without them."""
    table = pq.read_table(path, filesystem=filesystem)
    mask = _rows_of(table, user_id, transactions)
    hits = pc.sum(mask).as_py() or 0
    if hits and erase:
        kept = table.filter(pc.invert(mask))
        if kept.num_rows:
            write_atomically(filesystem, path, parquet_bytes(kept))
        else:
            filesystem.delete_file(path)
    return hits


def _text_file(filesystem, path: str, word: re.Pattern, alias: str, erase: bool) -> int:
    """Mentions of the user in a text file; with `erase`, replaced by the pseudonym."""
    with filesystem.open_input_stream(path) as f:
        text = f.read().decode(errors="replace")
    hits = len(word.findall(text))
    if hits and erase:
        write_atomically(filesystem, path, word.sub(alias, text).encode())
    return hits


def _original_file(filesystem, path: str, user_id: str, erase: bool) -> int:
    """An oversized dead letter's original kept whole: deleted if it names the user (its
    dead letter, which names the user too, goes with the Parquet rows)."""
    with filesystem.open_input_stream(path) as f:
        hits = int(user_id.encode() in f.read())
    if hits and erase:
        filesystem.delete_file(path)
    return hits


def scan_lake(lake, user_id: str, transactions: pa.Array, erase: bool,
              track=untracked) -> Footprint:  # fmt: skip
    """The user's rows and mentions in every lake file; with `erase`, rewritten without them."""
    filesystem, _ = lake.filesystem()
    from fraud_platform.governance.gdpr import pseudonym  # gdpr imports this module

    footprint, word, alias = Footprint(), _word(user_id), pseudonym(user_id)
    for path, inside in track(lake_files(lake), "lake files"):
        if inside.startswith(RECORDS):
            continue  # the erasure's own records: the request keeps the id until verified
        layer = "lake:" + "/".join(inside.split("/")[:2])
        if path.endswith(".parquet"):
            footprint.add(layer, _parquet_file(filesystem, path, user_id, transactions, erase))
        elif path.endswith(TEXT_SUFFIXES):
            footprint.add(layer, _text_file(filesystem, path, word, alias, erase))
        elif inside.startswith(ORIGINALS):
            footprint.add(layer, _original_file(filesystem, path, user_id, erase))
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
