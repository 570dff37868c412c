"""The time the quality checks add to one nightly partition, next to the same partition
without them.

    uv run python benchmarks/quality/bench_checks.py [--days 60] [--volume 5000]

Writes simulated history into a temporary lake and materializes every day before the last
one (untimed: the history the nightly partition reads). Then materializes the last day's
nightly partition (raw -> processed -> features and profiles -> training set -> candidate ->
evaluation -> production -> dashboard) three times in one process, on the same Spark session
and Redis: without any asset check, with every quality check of the five layers, and without
again. The baseline is the mean of the two runs without. Prints both times, the ratio and
each check's own seconds. Starts Redis when it is not running, and stops what it started.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta

import dagster as dg
from rich.console import Console
from rich.table import Table

from fraud_platform.config import Settings
from fraud_platform.definitions import defs
from fraud_platform.resources import LakeResource, RedisResource, SparkResource
from fraud_platform.simulation.history import write_history
from fraud_platform.simulation.reference import build_world
from fraud_platform.stack.manager import Stack
from sensors.schedules import BATCH_GROUPS

console = Console()
END = date(2025, 6, 1)


def batch_graph() -> tuple[list, list]:
    """The nightly job's assets, and every asset check guarding them."""
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.groups(*BATCH_GROUPS).resolve(graph)
    assets = [a for a in defs.assets if set(getattr(a, "keys", ())) & keys]
    return assets, list(defs.asset_checks or [])


def materialize(assets: list, resources: dict, first: str, last: str) -> tuple[float, dict]:
    """Seconds of one run over [first, last], and each check's own seconds (and, as
    "model", the candidate's holdout metrics when the run trained one)."""
    started = time.monotonic()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            assets,
            instance=instance,
            resources=resources,
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    seconds = time.monotonic() - started
    checks = {
        e.check_name: (e.passed, e.metadata["seconds"].value)
        for e in result.get_asset_check_evaluations()
    }
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == "models/candidate":
            meta = event.step_materialization_data.materialization.metadata
            console.print(
                f"candidate model: AUC-ROC {meta['auc_roc'].value:.3f}, "
                f"average precision {meta['average_precision'].value:.3f}"
            )
    return seconds, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--volume", type=int, default=5_000, help="transactions per day")
    args = parser.parse_args()

    settings = Settings.from_env()
    stack = Stack(settings)
    started = [r.name for r in stack.up(["redis"]) if r.action == "started"]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as root:
            lake = LakeResource(root=root)
            world = build_world(seed=5, n_users=3_000, n_merchants=2_000)
            with console.status(f"simulating {args.days} days x {args.volume:,} transactions"):
                rows, labels = write_history(lake, world, args.days, args.volume, END)
            console.print(f"history: {rows:,} transactions, {labels:,} labels")
            resources = {
                "lake": lake,
                "spark": SparkResource(),
                "redis": RedisResource(url=settings.redis_url.rsplit("/", 1)[0] + "/14"),
            }
            assets, checks = batch_graph()
            first = (END - timedelta(days=args.days)).isoformat()
            day = (END - timedelta(days=1)).isoformat()
            before = (END - timedelta(days=2)).isoformat()
            history = [a for a in assets if _early(a)]
            with console.status(f"materializing the history {first}..{before} (untimed)"):
                materialize(history, resources, first, before)
            # Without, with, without: the baseline is the mean of the runs either side, so
            # neither gains from running after a warmer cache.
            with console.status(f"nightly partition {day} without checks"):
                plain_before, _ = materialize(assets, resources, day, day)
            with console.status(f"nightly partition {day} with every check"):
                checked, results = materialize([*assets, *checks], resources, day, day)
            with console.status(f"nightly partition {day} without checks, again"):
                plain_after, _ = materialize(assets, resources, day, day)
            baseline = (plain_before + plain_after) / 2
    finally:
        stack.down(started)

    table = Table(title=f"Quality checks on the nightly partition {day}")
    table.add_column("check")
    table.add_column("passed")
    table.add_column("seconds", justify="right")
    for name, (passed, seconds) in sorted(results.items()):
        table.add_row(name, str(passed), f"{seconds:.2f}")
    console.print(table)
    console.print(
        f"partition without checks: {baseline:.1f} s (runs before and after: "
        f"{plain_before:.1f} s, {plain_after:.1f} s)"
    )
    console.print(f"partition with checks:    {checked:.1f} s")
    console.print(
        f"checks add {checked - baseline:.1f} s = {100 * (checked / baseline - 1):.1f}% "
        f"(ratio {checked / baseline:.2f}; target under 20% more)"
    )
    own = sum(seconds for _, seconds in results.values())
    console.print(
        f"the checks' own validation time: {own:.1f} s = {100 * own / baseline:.1f}% of the "
        "partition without them"
    )


def _early(asset) -> bool:
    """Assets the history needs before the nightly day: up to the features and profiles."""
    return bool(set(asset.group_names_by_key.values()) & {"raw", "processed", "features"})


if __name__ == "__main__":
    main()
