"""Metadata that makes a materialization worth reading in the Dagster UI."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any

import dagster as dg
from pyarrow.fs import FileSelector, FileType

from fraud_platform.governance.exposure import shown
from fraud_platform.lake import dataset, existing_dates


def lake_size(lake, path: str, dates: list[str]) -> tuple[int, int]:
    """(files, bytes) under the `date=` folders of `path`."""
    filesystem, base = lake.filesystem()
    files = size = 0
    for d in dates:
        selector = FileSelector(f"{base}/{path}/date={d}", recursive=True, allow_not_found=True)
        for info in filesystem.get_file_info(selector):
            if info.type == FileType.File and not info.base_name.startswith((".", "_")):
                files += 1
                size += info.size
    return files, size


def lake_head(lake, path: str, dates: list[str], columns: list[str] | None = None) -> list[dict]:
    """The first rows of the first of `dates` the lake holds under `path`, read from its
    files: a preview of what was written costs no Spark job."""
    present = existing_dates(lake, path, dates)
    if not present:
        return []
    return dataset(lake, f"{path}/date={present[0]}").head(5, columns=columns).to_pylist()


def preview(rows: list[dict[str, Any]]) -> dg.MetadataValue:
    """The first rows as a table, personal and card columns hidden (`governance.exposure`)."""
    if not rows:
        return dg.MetadataValue.md("(no rows)")
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(shown(h, r[h])) for h in header) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


@contextmanager
def timed(metadata: dict[str, Any]):
    began = time.monotonic()
    yield
    metadata["seconds"] = round(time.monotonic() - began, 2)


def partition_dates(context: dg.AssetExecutionContext) -> list[str]:
    """Every date of the run (one, or a backfill's whole range in a single run)."""
    from fraud_platform.batch.processing import date_range

    window = context.partition_key_range
    return date_range(window.start, window.end)
