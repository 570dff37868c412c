"""The first run's time (`make run` from an empty home), step by step, and where it goes.

    uv run python benchmarks/first_run/bench_first_run.py

Runs the first run's steps (`fraud-platform run` with its defaults) in a throwaway home with
its own stack on free ports, then again on the same home (a second `make run`), and stops the
stack it started. Beside the platform's figure, the work itself: the backfill's asset and check
steps as Dagster timed them in the same runs; the rest of the backfill's wall time is the
orchestrator's (run processes starting, the run queue, the daemon's ticks). The run must end as
the user's would: the backfill succeeded, a model promoted, predictions arriving.

Figures go to benchmarks/results/first_run.json and first_run.png (a timeline).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fraud_platform.config import Ports, Settings
from fraud_platform.plots import figure
from fraud_platform.stack.demo import DemoWorld
from fraud_platform.stack.first_run import FirstRun
from fraud_platform.stack.manager import Stack
from fraud_platform.stack.service import free_port

RESULTS = Path(__file__).resolve().parents[1] / "results"
console = Console()


def timed_steps(run: FirstRun, began: float) -> list[dict]:
    """Each step's title, start (seconds from `began`), seconds and detail."""
    steps = []
    for title, started, seconds, detail in run.run(console.status):
        console.print(f"  {title:<26} {seconds:6.1f}s  {detail}")
        steps.append(
            {"step": title, "start": started - began, "seconds": seconds, "detail": detail}
        )
    return steps


def dagster_steps(settings: Settings, backfill_id: str, since: float) -> list[dict]:
    """The backfill's runs and their steps, from the instance's event log: when each began
    and ended, in seconds from `since`."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    instance = dg.DagsterInstance.from_config(str(settings.home / "dagster"))
    rows = []
    for run in instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id})):
        starts = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type in (DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_START):
                at = entry.timestamp - since
                rows.append({"run": run.run_id[:8], "step": event.event_type_value, "start": at})
            elif event.event_type == DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                began = starts.get(entry.step_key, entry.timestamp)
                seconds = entry.timestamp - began
                rows.append(
                    {
                        "run": run.run_id[:8],
                        "step": entry.step_key,
                        "start": began - since,
                        "seconds": seconds,
                    }
                )
    return sorted(rows, key=lambda r: r["start"])


def plot(steps: list[dict], work: list[dict], path: Path) -> None:
    """The first run's steps above, the backfill's Dagster steps below, on one time axis."""
    bars = [(s["step"], s["start"], s["seconds"], "tab:blue") for s in steps]
    bars += [(w["step"], w["start"], w["seconds"], "tab:orange") for w in work if "seconds" in w]
    with figure(10, 0.28 * len(bars) + 1.2) as (axis, out):
        for row, (label, start, seconds, colour) in enumerate(bars):
            axis.barh(row, max(seconds, 0.5), left=start, color=colour)
            axis.text(start + seconds + 3, row, f"{label} {seconds:.0f}s", va="center", fontsize=7)
        axis.set_yticks([])
        axis.invert_yaxis()
        axis.set_xlabel("seconds since the first run began (blue: its steps; orange: Dagster's)")
    path.write_bytes(out["png"])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-first-run-") as home:
        os.environ["FRAUD_PLATFORM_HOME"] = home
        for name in Ports.__dataclass_fields__:  # a stack of its own beside any other
            os.environ[f"FRAUD_{name.upper()}_PORT"] = str(free_port())
        settings = Settings.from_env()
        try:
            console.print("first run, from an empty home")
            began = time.time()
            first = FirstRun(settings, DemoWorld())
            steps = timed_steps(first, began)
            total = time.time() - began
            outcome = first.summarize()
            work = dagster_steps(settings, outcome.backfill_id, began)
            console.print("second run, on the same home")
            again_began = time.time()
            again = timed_steps(FirstRun(settings, DemoWorld()), again_began)
            again_total = time.time() - again_began
        finally:
            Stack(settings).down()
    if not (outcome.model and outcome.predictions > 0):
        raise SystemExit(f"the first run did not end in a model and predictions: {outcome}")
    backfill = next(s for s in steps if s["step"] == "nightly job backfill")
    step_work = sum(w.get("seconds", 0.0) for w in work)
    results = {
        "first_run_seconds": round(total, 1),
        "second_run_seconds": round(again_total, 1),
        "steps": steps,
        "second_run_steps": again,
        "backfill": {
            "seconds": round(backfill["seconds"], 1),
            "asset_and_check_steps_seconds": round(step_work, 1),
            "orchestration_seconds": round(backfill["seconds"] - step_work, 1),
            "runs": len({w["run"] for w in work}),
        },
        "dagster_steps": work,
        "materialized": outcome.materialized,
        "model": outcome.model,
        "metrics": outcome.metrics,
        "predictions_seen": outcome.predictions,
        "world": DemoWorld().__dict__,
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "first_run.json").write_text(json.dumps(results, indent=2, default=str))
    plot(steps, work, RESULTS / "first_run.png")
    table = Table(title="first run")
    for column in ("step", "seconds", "detail"):
        table.add_column(column)
    for s in steps:
        table.add_row(s["step"], f"{s['seconds']:.1f}", s["detail"])
    table.add_row("[bold]total[/]", f"[bold]{total:.1f}[/]", f"second run: {again_total:.1f}s")
    console.print(table)
    console.print(
        f"backfill {backfill['seconds']:.0f}s: the asset and check steps {step_work:.0f}s, "
        f"the orchestrator {backfill['seconds'] - step_work:.0f}s over "
        f"{results['backfill']['runs']} runs; figures in {RESULTS / 'first_run.json'}"
    )


if __name__ == "__main__":
    main()
