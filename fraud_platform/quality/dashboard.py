"""The design's daily data-quality dashboard: volume, completeness, validity, consistency,
freshness, drift, and the last 24 hours of alerts, as one HTML page with plots.

Everything is read back from the lake (raw, dead letters, processed, features, labels,
predictions), so the page reports what the platform actually stored.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fraud_platform.alerts import Alert, Alerter
from fraud_platform.lake import (
    DEAD_LETTERS_PATH,
    LABELS,
    PREDICTIONS,
    RAW_TRANSACTIONS,
    row_count,
)
from fraud_platform.plots import data_uri, figure
from fraud_platform.quality import drift, loaders
from fraud_platform.quality.checks import REPORTS_PATH
from fraud_platform.topics import DLQ_TOPICS

TREND_DAYS = 7
PERCENTILES = (50, 90, 99)


@dataclass
class Dashboard:
    day: str
    summary: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)  # the day's Data Docs pages, by file name

    @property
    def path(self) -> str:
        return f"{REPORTS_PATH}/date={self.day}/dashboard.html"

    def html(self) -> str:
        return _page(self)


def build(lake: Any, day: str, alerter: Alerter | None = None) -> Dashboard:
    board = Dashboard(day)
    _volume(lake, board)
    _completeness_and_consistency(lake, board)
    _freshness(lake, board)
    _drift(lake, board)
    board.pages = _validation_pages(lake, day)
    board.alerts = (alerter or Alerter.from_env()).recent(hours=24)
    board.summary["alerts_24h"] = len(board.alerts)
    return board


def _volume(lake: Any, board: Dashboard) -> None:
    """Valid and dead-lettered messages per day over the last 7 days; the day's DLQ rate."""
    days = [*loaders.previous_days(board.day, TREND_DAYS - 1), board.day]
    valid = [row_count(lake, RAW_TRANSACTIONS.path, [d]) for d in days]
    dead = {
        t.name: [row_count(lake, f"{DEAD_LETTERS_PATH}/{t.name}", [d]) for d in days]
        for t in DLQ_TOPICS
    }
    errors = sum(dead[name][-1] for name in loaders.ERROR_DLQS)
    volume = valid[-1] + errors
    board.summary.update(
        rows=valid[-1],
        dead_letter_rate=round(errors / volume, 6) if volume else 0.0,
        duplicates_dead_lettered=dead["dlq-duplicates"][-1],
    )
    board.tables["dead letters (day)"] = {name: counts[-1] for name, counts in dead.items()}
    with figure() as (axis, out):
        labels = [d[5:] for d in days]
        axis.bar(labels, valid, label="valid (raw)", color="#4c72b0")
        bottom = np.array(valid, dtype=float)
        for name, counts in dead.items():
            axis.bar(labels, counts, bottom=bottom, label=name)
            bottom += counts
        axis.set(title=f"Volume, {TREND_DAYS} days", ylabel="messages")
        axis.legend(fontsize=7)
    board.images["volume"] = out["png"]


def _completeness_and_consistency(lake: Any, board: Dashboard) -> None:
    """Missing rate per raw field; duplicates removed and unknown references in processing."""
    raw = loaders.read_days(lake, RAW_TRANSACTIONS.path, [board.day])
    if raw is None or raw.empty:
        return
    fields = [c for c in raw.columns if c not in ("source_partition", "source_offset")]
    missing = raw[fields].isna().mean().sort_values()
    board.tables["missing rate per field"] = {k: round(float(v), 4) for k, v in missing.items()}
    board.summary["completeness"] = round(1 - float(missing.mean()), 4)
    with figure(6, 4) as (axis, out):
        axis.barh(missing.index, missing.to_numpy() * 100, color="#dd8452")
        axis.set(title="Missing values per field", xlabel="% of rows")
        axis.tick_params(labelsize=7)
    board.images["missing"] = out["png"]
    processed = loaders.processed_transactions({"lake": lake}, board.day).frame
    if "user_known" in processed:
        board.summary.update(
            duplicates_removed=len(raw) - len(processed),
            unknown_users=int((~processed["user_known"]).sum()),
            unknown_merchants=int((~processed["merchant_known"]).sum()),
        )


def _freshness(lake: Any, board: Dashboard) -> None:
    """How late labels arrive (transaction to completed investigation) and how fast the
    scorer answered, as percentiles."""
    lags: dict[str, np.ndarray] = {}
    labels = loaders.read_days(lake, LABELS.path, [board.day])
    if labels is not None and not labels.empty:
        delay = labels["investigation_complete_time"] - labels["transaction_time"]
        lags["label delay (days)"] = delay.dt.total_seconds().to_numpy() / 86_400
    predictions = loaders.read_days(lake, PREDICTIONS.path, [board.day])
    if predictions is not None and not predictions.empty:
        lags["scoring latency (ms)"] = predictions["prediction_latency_ms"].to_numpy()
    table = {
        name: {f"p{p}": round(float(np.nanpercentile(values, p)), 3) for p in PERCENTILES}
        for name, values in lags.items()
    }
    board.tables["lag percentiles"] = table
    if not table:
        return
    with figure(6, 2.6 * len(table)) as (axis, out):
        names = list(table)
        for i, p in enumerate(PERCENTILES):
            axis.barh(
                np.arange(len(names)) + i * 0.25,
                [table[n][f"p{p}"] for n in names],
                height=0.25,
                label=f"p{p}",
            )
        axis.set_yticks(np.arange(len(names)) + 0.25, names)
        axis.set(title="Lag percentiles", xscale="log")
        axis.legend(fontsize=7)
    board.images["lag"] = out["png"]


def _drift(lake: Any, board: Dashboard) -> None:
    """PSI per feature of the day against the previous 7 days."""
    loaded = loaders.feature_drift({"lake": lake}, board.day)
    references = loaded.parameters["references"]
    if loaded.frame.empty or not references:
        return
    current = {
        c: drift.cdf_at(loaded.frame[c], ref["points"])
        for c, ref in references.items()
        if ref is not None
    }
    psi = pd.Series(drift.compare(references, current, drift.psi)).sort_values()
    board.summary["features_over_psi_0.25"] = int((psi > 0.25).sum())
    board.tables["PSI per feature"] = psi.round(4).to_dict()
    shown = psi.tail(25)
    with figure(6, 5) as (axis, out):
        colors = ["#c44e52" if v > 0.25 else "#55a868" for v in shown]
        axis.barh(shown.index, shown.to_numpy(), color=colors)
        axis.axvline(0.25, color="#c44e52", linestyle="--", linewidth=1)
        axis.set(title="PSI against the previous 7 days (top 25)", xlabel="PSI")
        axis.tick_params(labelsize=7)
    board.images["psi"] = out["png"]


def _validation_pages(lake: Any, day: str) -> list[str]:
    """The Data Docs pages the day's checks wrote next to the dashboard."""
    from pyarrow.fs import FileSelector

    filesystem, base = lake.filesystem()
    selector = FileSelector(f"{base}/{REPORTS_PATH}/date={day}", allow_not_found=True)
    names = (info.base_name for info in filesystem.get_file_info(selector))
    return sorted(n for n in names if n.endswith(".html") and n != "dashboard.html")


def _page(board: Dashboard) -> str:
    def table(rows: dict[str, Any]) -> str:
        body = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_show(v))}</td></tr>"
            for k, v in rows.items()
        )
        return f"<table>{body}</table>"

    images = "".join(
        f'<figure><img src="{data_uri(png)}" alt="{name}"></figure>'
        for name, png in board.images.items()
    )
    tables = "".join(f"<h3>{html.escape(n)}</h3>{table(t)}" for n, t in board.tables.items())
    links = "".join(
        f'<li><a href="{html.escape(p)}">{html.escape(p.removesuffix(".html"))}</a></li>'
        for p in board.pages
    )
    pages = f"<ul>{links}</ul>" if links else "<p>no check has run for this day</p>"
    alerts = "".join(
        f"<tr><td>{pd.Timestamp(a.at_ms, unit='ms', tz='UTC'):%Y-%m-%d %H:%M}</td>"
        f"<td>{a.severity}</td><td>{html.escape(a.source)}</td><td>{html.escape(a.title)}</td></tr>"
        for a in board.alerts
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Data quality {board.day}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;margin-bottom:1em}}td{{border:1px solid #ddd;padding:2px 8px}}
figure{{display:inline-block;margin:0 1em 1em 0}}</style></head><body>
<h1>Data quality, {board.day}</h1>
<h2>Summary</h2>{table(board.summary)}
<h2>Validation results (Data Docs)</h2>{pages}
<h2>Plots</h2>{images}
<h2>Details</h2>{tables}
<h2>Alerts, last 24 hours</h2>
<table><tr><td>time (UTC)</td><td>severity</td><td>source</td><td>title</td></tr>{alerts}</table>
</body></html>
"""


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)
