"""Layer 2: the streaming suite on each window summary of the monitoring job (job 3).

The Flink job measures every event-time minute of transactions-enriched exactly, over all
its rows; this side turns a summary into one row per measurement (metric, subject, value)
and runs the streaming suite on it, so thresholds live in checks.yaml with the other layers'
and GX reports the failures. A failure goes out as an alert. The window is never held back:
streaming quality informs, the batch layers block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from fraud_platform.alerts import Alert, Alerter
from fraud_platform.quality import drift, loaders
from fraud_platform.quality.runner import Outcome, validate
from fraud_platform.quality.suites import check_named

SUITE = "streaming/window_metrics"
WINDOW_FIGURES = ("volume", "schema_changes", "undecodable", "amount_min", "amount_max",
                  "amount_mean", "spike_rate")  # fmt: skip
# A minute holds a single hour of a single weekday: their distribution says nothing.
CALENDAR_FEATURES = loaders.CALENDAR_FEATURES | {"hour_of_day"}


def baseline(lake: Any, days: int = 7) -> dict[str, Any]:
    """The monitoring job's reference, from the lake's transaction features of the `days`
    before today: each numeric enriched feature's quantile CDF, and each feature's missing
    share (a feature that is often legitimately null, e.g. an average over an empty window,
    alerts only when it is missing more often than it used to be). Empty when the lake has
    no features yet."""
    from fraud_platform.features.stream import enriched_feature_names
    from fraud_platform.lake import TRANSACTION_FEATURES_PATH

    today = datetime.now(UTC).date().isoformat()
    frame = loaders.read_days(lake, TRANSACTION_FEATURES_PATH, loaders.previous_days(today, days))
    if frame is None or frame.empty:
        return {"references": {}, "missing_baseline": {}}
    names = [n for n in enriched_feature_names() if n in frame.columns]
    numeric = [n for n in names if n not in CALENDAR_FEATURES
               and pd.api.types.is_numeric_dtype(frame[n])]  # fmt: skip
    references = {n: drift.reference(frame[n]) for n in numeric}
    return {
        "references": {n: r for n, r in references.items() if r is not None},
        "missing_baseline": {n: round(float(frame[n].isna().mean()), 6) for n in names},
    }


def window_metrics(summary: Mapping[str, Any], min_psi_rows: int) -> pd.DataFrame:
    """A window summary as rows (metric, subject, value): the suite's input. PSI is left out
    for a feature with fewer than `min_psi_rows` values in the window (too few to compare)."""
    rows: list[tuple[str, str, float | None]] = [
        (metric, "", summary[metric]) for metric in WINDOW_FIGURES
    ]
    rows += [(f"lag_{p}_ms", "", v) for p, v in summary["lag_ms"].items()]
    baseline_missing = summary["missing_baseline"]  # empty before the lake has features
    rows += [
        ("missing_rate_increase", name, rate - baseline_missing[name])
        for name, rate in summary["missing_rate"].items()
        if name in baseline_missing
    ]
    rows += [
        ("psi", name, drift.psi(d["reference"]["cdf"], d["cdf"]))
        for name, d in summary["distributions"].items()
        if d["rows"] >= min_psi_rows
    ]
    frame = pd.DataFrame(rows, columns=["metric", "subject", "value"])
    return frame.astype({"value": "float64"})


def window_name(summary: Mapping[str, Any]) -> str:
    start = datetime.fromtimestamp(summary["window_start_ms"] / 1000, UTC)
    return start.strftime("%Y-%m-%dT%H:%MZ")


def validate_window(
    summary: Mapping[str, Any], alerter: Alerter | None = None, **parameters: Any
) -> tuple[Outcome, pd.DataFrame]:
    """Validate one window summary; alerts when an expectation fails, naming the metrics and
    subjects (features) out of bounds. `parameters` override checks.yaml's thresholds."""
    check = check_named(SUITE)
    resolved = check.resolved_parameters(**parameters)
    frame = window_metrics(summary, resolved["min_psi_rows"])
    outcome = validate(frame, check, **parameters)
    if not outcome.success:
        (alerter or Alerter.from_env()).send(
            Alert(
                source=f"quality/{check.name}",
                severity=check.severity,
                title=f"window {window_name(summary)}: "
                f"{len(outcome.failures)} expectation(s) failed",
                detail="\n".join(_explained(f, frame) for f in outcome.failures),
            )
        )
    return outcome, frame


def _explained(failure: Any, frame: pd.DataFrame) -> str:
    """The failure's summary with the subjects whose values it reports."""
    metric = failure.condition
    found = frame[(frame["metric"] == metric) & frame["value"].isin(failure.sample)]
    subjects = [s for s in found["subject"] if s]
    return f"{metric}: {failure.summary()}" + (f" ({', '.join(subjects)})" if subjects else "")


def new_windows(
    bootstrap: str, topic: str, offsets: Mapping[int, int], limit: int = 60
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Up to `limit` committed window summaries of `topic` after `offsets` (the next offset
    to read per partition; a partition not in it starts at its last `limit` summaries), and
    the offsets after them. The caller keeps the offsets (a sensor's cursor)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "quality-window-reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(f"topic {topic}: {metadata.error}")
        positions, ends = {}, {}
        for partition in metadata.partitions:
            low, ends[partition] = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), 10
            )
            positions[partition] = offsets.get(partition, max(low, ends[partition] - limit))
        consumer.assign([TopicPartition(topic, p, o) for p, o in positions.items()])
        found: list[dict[str, Any]] = []
        while len(found) < limit and any(positions[p] < ends[p] for p in positions):
            batch = consumer.consume(limit - len(found), timeout=2)
            if not batch:
                break  # the rest is uncommitted (an open transaction)
            for message in batch:
                if message.error() is None:
                    found.append(_summary(message.value(), message.offset()))
                    positions[message.partition()] = message.offset() + 1
        return found, positions
    finally:
        consumer.close()


def _summary(value: bytes, offset: int) -> dict[str, Any]:
    """The summary, or {"invalid": why} for a message that is not one (reported, skipped)."""
    try:
        summary = json.loads(value)
        if isinstance(summary, dict) and "window_start_ms" in summary:
            return summary
        raise ValueError("not a window summary")
    except ValueError as error:
        return {"invalid": f"offset {offset}: {error}: {value[:80]!r}"}
