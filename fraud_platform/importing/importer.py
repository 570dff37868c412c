"""Import an external transactions file (Parquet or CSV) into the raw contract.

A mapping (YAML) names the source column of each contract field, with an optional id
template and value map; fields it does not name stay null, never invented. Labels are
optional. Rows go straight to the lake (hourly partitions, as the archiver writes them) or
through Kafka's front door (transactions-ingest, then the validator). Straight to the lake,
each row still passes the validator's rules (its native checker), less the live-time bounds
that history cannot meet; a row that fails goes to the lake's dead letters with the reason,
as the archiver keeps the validator's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from fraud_platform.lake import (
    LABELS_SCHEMA,
    MERCHANTS,
    RAW_TRANSACTIONS_SCHEMA,
    USERS,
    parquet_bytes,
    write_atomically,
)
from fraud_platform.messaging import produce

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
DAY_MS = 86_400_000
UTC_MS = pa.timestamp("ms", tz="UTC")


class ImportError_(ValueError):
    """A mapping or source that cannot be imported; the text names the column or field."""


@dataclass(frozen=True)
class Mapping:
    name: str
    transaction: dict[str, dict[str, Any]]
    labels: dict[str, Any] | None

    @classmethod
    def load(cls, name_or_path: str) -> Mapping:
        path = Path(name_or_path)
        if not path.exists():
            path = MAPPINGS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            shipped = ", ".join(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))
            raise ImportError_(
                f"no mapping {name_or_path!r}: give a YAML file or one of: {shipped}"
            )
        spec = yaml.safe_load(path.read_text())
        unknown = set(spec["transaction"]) - set(RAW_TRANSACTIONS_SCHEMA.names) - {"location"}
        if unknown:
            raise ImportError_(
                f"mapping {path.name} names unknown contract fields: {sorted(unknown)}"
            )
        for required in ("transaction_id", "user_id", "merchant_id", "amount", "timestamp"):
            if required not in spec["transaction"]:
                raise ImportError_(
                    f"mapping {path.name} does not map the required field {required!r}"
                )
        return cls(spec["name"], spec["transaction"], spec.get("labels"))


def read_source(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if path.suffix in (".csv", ".gz"):
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    raise ImportError_(f"{path.name}: only .parquet and .csv files are imported")


def _column(source: pa.Table, rule: dict[str, Any], field: str) -> pa.Array:
    name = rule.get("column") if isinstance(rule, dict) else None
    if name is None:
        raise ImportError_(f"the mapping of {field} names no source column ({{column: NAME}})")
    if name not in source.column_names:
        raise ImportError_(
            f"source has no column {name!r} (mapped to {field}); it has {source.column_names}"
        )
    column = source[name].combine_chunks()
    if "values" in rule:
        lookup = {str(k): v for k, v in rule["values"].items()}
        column = pa.array([lookup.get(str(v)) for v in column.to_pylist()], pa.string())
    if "template" in rule:
        prefix, suffix = rule["template"].split("{}")
        column = pc.binary_join_element_wise(prefix, pc.cast(column, pa.string()), suffix, "")
    if rule.get("card_number"):  # a full card number: only its last 4 digits and token are kept
        column = pa.array([_protected(v, field) for v in column.to_pylist()], pa.string())
    return column


def _protected(value: Any, part: str) -> str | None:
    """`part` ("card_last4" or "card_token") of a card number; None if it is not one. Only
    the token needs the keyed hash, so the last 4 digits are taken without it."""
    from fraud_platform.governance.pci import card_digits, card_token

    if value is None:
        return None
    try:
        digits = card_digits(str(value))
    except ValueError:
        return None  # not a card number: nothing of it is kept
    return digits[-4:] if part == "card_last4" else card_token(digits)


def _timestamps(column: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            column = pc.assume_timezone(column, "UTC")
        return pc.cast(column, UTC_MS)
    if pa.types.is_integer(column.type):  # epoch milliseconds
        return pc.cast(column, pa.int64()).cast(UTC_MS)
    return pc.cast(
        pc.strptime(column, format="%Y-%m-%d %H:%M:%S", unit="ms"), pa.timestamp("ms")
    ).cast(UTC_MS)


def source_times(source: pa.Table, mapping: Mapping) -> pa.Array:
    """The source's transaction times as UTC milliseconds, in source order."""
    return _timestamps(_column(source, mapping.transaction["timestamp"], "timestamp"))


def map_transactions(source: pa.Table, mapping: Mapping) -> pa.Table:
    """The source as a raw-transactions table, sorted by time; unmapped fields null."""
    n = source.num_rows
    rules = dict(mapping.transaction)
    card = rules.get("card_last4") or {}
    if card.get("card_number"):  # the card number's column gives its token too
        rules.setdefault("card_token", card)
    columns = {}
    for field in RAW_TRANSACTIONS_SCHEMA:
        rule = rules.get(field.name)
        if rule is None:
            columns[field.name] = pa.nulls(n, field.type)
        elif field.name == "timestamp":
            columns[field.name] = _timestamps(_column(source, rule, field.name))
        else:
            columns[field.name] = pc.cast(_column(source, rule, field.name), field.type)
    table = pa.table(columns, schema=RAW_TRANSACTIONS_SCHEMA)
    return table.sort_by("timestamp")


def map_labels(source: pa.Table, transactions_time: pa.Array, mapping: Mapping) -> pa.Table | None:
    spec = mapping.labels
    if not spec:
        return None
    n = source.num_rows
    delay = int(spec["investigation_delay_days"] * DAY_MS)
    complete = pc.cast(pc.add(pc.cast(transactions_time, pa.int64()), delay), UTC_MS)
    fraud_type = _column(source, spec["fraud_type"], "fraud_type") if "fraud_type" in spec else None
    return pa.table(
        {
            "transaction_id": _column(
                source, mapping.transaction["transaction_id"], "transaction_id"
            ),
            "is_fraud": pc.cast(_column(source, spec["is_fraud"], "is_fraud"), pa.bool_()),
            "transaction_time": transactions_time,
            "investigation_complete_time": complete,
            "fraud_type": fraud_type if fraud_type is not None else pa.nulls(n, pa.string()),
            "confidence": pa.nulls(n, pa.string()),
            "source_partition": pa.nulls(n, pa.int32()),
            "source_offset": pa.nulls(n, pa.int64()),
        },
        schema=LABELS_SCHEMA,
    )


def checked(
    transactions: pa.Table, progress: Callable[[str], None] = lambda _: None
) -> tuple[pa.Table, dict[str, list[dict[str, Any]]]]:
    """(the rows the validator's rules accept, the others as dead-letter rows by DLQ). The
    rules run on each row encoded as a producer would send it; history is old by nature, so
    the live-time bounds (maximum age, future skew) are lifted."""
    import dataclasses
    import time

    from fraud_platform.contracts import TRANSACTION
    from fraud_platform.governance.pci import mask_pans_in_bytes, mask_text
    from fraud_platform.ingestion.rules import Rules
    from fraud_platform.lake import transaction_record

    unbounded = 2**62
    rules = dataclasses.replace(
        Rules.from_env(), max_age_ms=unbounded, max_future_skew_ms=unbounded
    )
    now_ms = int(time.time() * 1000)
    keep = np.ones(transactions.num_rows, dtype=bool)
    letters: dict[str, list[dict[str, Any]]] = {}
    offset = 0
    for batch in transactions.to_batches(50_000):
        values = [TRANSACTION.encode(transaction_record(row)) for row in batch.to_pylist()]
        for i, (transaction_id, _, rejection, _) in enumerate(rules.check_batch(values, now_ms)):
            if rejection is None:
                continue
            keep[offset + i] = False
            dlq, reason, detail = rejection
            letter = {
                "transaction_id": mask_text(transaction_id),
                "reason": reason,
                "detail": detail,
                "rejected_at": now_ms,
                "original_value": mask_pans_in_bytes(values[i]),
            }
            letters.setdefault(dlq, []).append(letter)
        offset += batch.num_rows
        progress(f"checked {offset:,} of {transactions.num_rows:,} rows")
    return transactions.filter(pa.array(keep)), letters


def _write_dead_letters(lake, letters: dict[str, list[dict]], file_name: str) -> int:
    from fraud_platform.lake import DEAD_LETTERS_SCHEMA, dead_letter_table

    filesystem, base = lake.filesystem()
    for dlq, rows in letters.items():
        columns = {name: [row.get(name) for row in rows] for name in DEAD_LETTERS_SCHEMA.names}
        table = pa.table(columns, schema=DEAD_LETTERS_SCHEMA)
        directory = dead_letter_table(dlq).partition_dir(rows[0]["rejected_at"])
        write_atomically(filesystem, f"{base}/{directory}/{file_name}", parquet_bytes(table))
    return sum(len(rows) for rows in letters.values())


def import_to_lake(
    lake, source_path: Path, mapping: Mapping, progress: Callable[[str], None] = lambda _: None
) -> tuple[int, int, int]:
    """Write the mapped rows into the lake's partitions, the rejected ones to its dead letters;
    idempotent (deterministic names). Returns (transactions, labels, dead letters)."""
    from fraud_platform.simulation.history import (
        write_labels_by_completion,
        write_transactions_by_hour,
    )

    source = read_source(source_path)
    progress(f"read {source.num_rows:,} rows")
    transactions, letters = checked(map_transactions(source, mapping), progress)
    file_name = f"part-import-{mapping.name}.parquet"
    rejected = _write_dead_letters(lake, letters, file_name)
    write_transactions_by_hour(lake, transactions, file_name)
    progress(f"wrote {transactions.num_rows:,} transactions")
    labels = map_labels(source, source_times(source, mapping), mapping)
    n_labels = 0
    if labels is not None:
        n_labels = write_labels_by_completion(
            lake, labels, file_name, until_ms=np.iinfo(np.int64).max
        )
        progress(f"wrote {n_labels:,} labels")
    _write_reference_ids(lake, transactions, mapping.name)
    return transactions.num_rows, n_labels, rejected


def _write_reference_ids(lake, transactions: pa.Table, source_name: str) -> None:
    """The users and merchants the source names, with every attribute it lacks left null."""
    filesystem, base = lake.filesystem()
    for table, key in ((USERS, "user_id"), (MERCHANTS, "merchant_id")):
        ids = pc.unique(transactions[key])
        columns = {
            f.name: ids if f.name == key else pa.nulls(len(ids), f.type) for f in table.schema
        }
        data = pa.table(columns, schema=table.schema)
        write_atomically(
            filesystem, f"{base}/{table.path}/import-{source_name}.parquet", parquet_bytes(data)
        )


def import_to_kafka(
    producer,  # confluent_kafka.Producer
    source_path: Path,
    mapping: Mapping,
    max_age_ms: int,
    shift_to_now: bool = False,
    topic_prefix: str = "",
    progress: Callable[[int], None] = lambda sent: None,
) -> tuple[int, int]:
    """Send the mapped rows through the front door (transactions-ingest, then fraud-labels).

    The validator rejects events older than its max age, so history older than that is
    refused here unless `shift_to_now` moves every timestamp by one offset, newest = now.
    """
    import time

    from fraud_platform.contracts import FRAUD_LABEL, TRANSACTION
    from fraud_platform.lake import label_record, transaction_record
    from fraud_platform.topics import FRAUD_LABELS, TRANSACTIONS_INGEST, topic_name

    source = read_source(source_path)
    times = source_times(source, mapping)
    now_ms = int(time.time() * 1000)
    millis = pc.cast(times, pa.int64())
    shift = now_ms - pc.max(millis).as_py() if shift_to_now else 0
    oldest = pc.min(millis).as_py() + shift
    if oldest < now_ms - max_age_ms:
        days = (now_ms - oldest) / DAY_MS
        raise ImportError_(
            f"{source_path.name} holds events {days:,.0f} days old; the validator accepts at most "
            f"{max_age_ms / DAY_MS:g} days (FRAUD_VALIDATOR_MAX_AGE_S). Import it to the lake "
            "(--to lake), or pass --shift-to-now to move every timestamp so the newest is now"
        )
    if shift:
        source = source.set_column(
            source.column_names.index(mapping.transaction["timestamp"]["column"]),
            mapping.transaction["timestamp"]["column"],
            pc.cast(pc.add(millis, shift), pa.int64()),
        )
        times = source_times(source, mapping)
    transactions = map_transactions(source, mapping)
    ingest = topic_name(TRANSACTIONS_INGEST.name, topic_prefix)
    sent = 0
    for batch in transactions.to_batches(10_000):
        for row in batch.to_pylist():
            record = transaction_record(row)
            produce(
                producer,
                ingest,
                record["user_id"],
                TRANSACTION.encode(record),
                record["timestamp"] or 0,
            )
        sent += batch.num_rows
        producer.poll(0)
        progress(sent)
    labels = map_labels(source, times, mapping)
    n_labels = 0
    if labels is not None:
        # Only investigations completed by now can have been published.
        label_topic = topic_name(FRAUD_LABELS.name, topic_prefix)
        # Each label names its transaction's card holder and merchant (label v2); the
        # labels are in source order, as the mapped columns are.
        for name in ("user_id", "merchant_id"):
            column = _column(source, mapping.transaction[name], name)
            labels = labels.append_column(name, pc.cast(column, pa.string()))
        completed = pc.less_equal(
            pc.cast(labels["investigation_complete_time"], pa.int64()), now_ms
        )
        for row in labels.filter(completed).to_pylist():
            label = FRAUD_LABEL.encode(label_record(row))
            produce(producer, label_topic, row["transaction_id"], label)
            n_labels += 1
    producer.flush(60)
    return sent, n_labels
