"""History mode: past days written straight to the lake, in the archiver's raw format.

Files have deterministic names (`part-sim{seed}.parquet` per hour, labels by source day), so
running the same days again rewrites the same files: idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraud_platform.lake import (
    LABELS,
    MERCHANTS,
    RAW_TRANSACTIONS,
    USERS,
    parquet_bytes,
    write_atomically,
)
from fraud_platform.simulation.reference import World, merchants_table, users_table
from fraud_platform.simulation.traffic import DAY_MS, HOUR_MS, generate_day


def epoch_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def write_reference(lake, world: World, source: str) -> None:
    filesystem, base = lake.filesystem()
    for table, data in ((USERS, users_table(world)), (MERCHANTS, merchants_table(world))):
        write_atomically(filesystem, f"{base}/{table.path}/{source}.parquet", parquet_bytes(data))


def write_transactions_by_hour(lake, transactions: pa.Table, file_name: str) -> int:
    """Split a time-sorted table into its hourly partitions; returns the files written."""
    filesystem, base = lake.filesystem()
    millis = pc.cast(transactions["timestamp"], pa.int64()).to_numpy()
    hours = millis // HOUR_MS
    bounds = np.flatnonzero(np.diff(hours)) + 1
    written = 0
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(hours)], strict=True):
        directory = RAW_TRANSACTIONS.partition_dir(int(millis[start]))
        chunk = transactions.slice(start, stop - start)
        write_atomically(filesystem, f"{base}/{directory}/{file_name}", parquet_bytes(chunk))
        written += 1
    return written


def write_labels_by_completion(lake, labels: pa.Table, file_name: str, until_ms: int) -> int:
    """Labels whose investigation completed before `until_ms`, by completion date."""
    filesystem, base = lake.filesystem()
    completed = pc.cast(labels["investigation_complete_time"], pa.int64()).to_numpy()
    labels = labels.filter(pa.array(completed < until_ms))
    completed = completed[completed < until_ms]
    days = completed // DAY_MS
    for day in np.unique(days):
        chunk = labels.filter(pa.array(days == day))
        directory = LABELS.partition_dir(int(day) * DAY_MS)
        write_atomically(filesystem, f"{base}/{directory}/{file_name}", parquet_bytes(chunk))
    return labels.num_rows


def write_history(
    lake,
    world: World,
    days: int,
    volume: int,
    end: date | None = None,
    progress: Callable[[int, int], None] = lambda rows, labels: None,
) -> tuple[int, int]:
    """Write `days` days ending the day before `end` (default: today, UTC).

    Labels are written only once their investigation has completed by `end`, as a pipeline
    running that day would have seen them. Returns (transactions, labels) written.
    """
    end = end or datetime.now(UTC).date()
    until_ms = epoch_day(end) * DAY_MS
    write_reference(lake, world, f"sim{world.seed}")
    totals = [0, 0]
    for day in range(epoch_day(end - timedelta(days=days)), epoch_day(end)):
        traffic = generate_day(world, day, volume)
        write_transactions_by_hour(lake, traffic.transactions, f"part-sim{world.seed}.parquet")
        stamp = np.datetime64(day, "D").astype(str)
        labels = write_labels_by_completion(
            lake, traffic.labels, f"part-sim{world.seed}-from-{stamp}.parquet", until_ms
        )
        totals[0] += traffic.transactions.num_rows
        totals[1] += labels
        progress(traffic.transactions.num_rows, labels)
    return totals[0], totals[1]
