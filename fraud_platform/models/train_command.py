"""`fraud-platform train`: a model trained and evaluated on any period of the lake's data by
the evaluation protocol, through the same Dagster assets (and their quality checks) the
nightly run materializes; each stage is a run the UI shows.

The assets come from fraud_platform.definitions, the entry point that merges them: the
library itself knows them only by key.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fraud_platform.config import Settings
from fraud_platform.features.catalog import LABEL_DELAY_DAYS, history_days
from fraud_platform.lake import RAW_TRANSACTIONS, existing_dates
from fraud_platform.models.protocol import METRICS, TrainingWindow


@dataclass(frozen=True)
class Stage:
    name: str
    assets: tuple[str, ...]  # asset keys, as "layer/name"
    first: str | None = None  # partition range; None: unpartitioned
    last: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # op name -> its config


@dataclass(frozen=True)
class TrainingRun:
    """One `train` invocation: the protocol's periods, and what to do beyond evaluating."""

    train_start: date
    window: TrainingWindow
    search: bool = False
    folds: int = 4
    metric: str = "average_precision"
    promote: bool = False
    remove_known_compromised: bool = True
    label_delay_days: int = LABEL_DELAY_DAYS  # the features' (FRAUD_LABEL_DELAY_DAYS)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"--metric {self.metric!r}: use one of {', '.join(METRICS)}")

    @property
    def as_of(self) -> str:
        return self.window.as_of_for(self.train_start)

    @property
    def features_start(self) -> str:
        """The first day whose features are read: the training start, or the oldest
        validation fold's when searching."""
        if not self.search:
            return self.train_start.isoformat()
        oldest = self.window.fold_as_of(self.as_of, self.folds - 1)
        return self.window.periods(oldest).train[0]

    @property
    def history_start(self) -> str:
        start = date.fromisoformat(self.features_start)
        return (start - timedelta(days=history_days(self.label_delay_days))).isoformat()

    def stages(self, raw_start: str) -> list[Stage]:
        periods = self.window.periods(self.as_of)
        window = {
            "train_days": self.window.train_days,
            "delay_days": self.window.delay_days,
            "test_days": self.window.test_days,
            "remove_known_compromised": self.remove_known_compromised,
        }
        search = {**window, "as_of": self.as_of, "folds": self.folds, "metric": self.metric}
        day = (self.as_of, self.as_of)
        stages = [
            Stage(
                "raw and processed transactions",
                ("raw/transactions", "raw/labels", "processed/transactions"),
                raw_start,
                self.as_of,
            ),
            Stage(
                "features",
                ("features/transaction_features",),
                self.features_start,
                periods.test[-1],
            ),
            Stage(
                "hyperparameter search",
                ("models/hyperparameters",),
                config={"models__hyperparameters": search},
            ),
            Stage(
                "training set",
                ("training/training_set",),
                *day,
                config={"training__training_set": window},
            ),
            Stage("candidate model", ("models/candidate",), *day),
            Stage("evaluation and layer 5", ("models/evaluation",), *day),
            Stage("promotion", ("models/production",), *day),
        ]
        skipped = {"hyperparameter search": not self.search, "promotion": not self.promote}
        return [s for s in stages if not skipped.get(s.name)]


def check_allowed(run: TrainingRun) -> None:
    """Refuse before any work what the acting role may not do (promotion is the architect's)."""
    if run.promote:
        from fraud_platform.governance.rbac import Right, require

        require(Right.DEPLOY_PRODUCTION, "model.promote", "models/current")


def raw_start(lake, run: TrainingRun) -> str:
    """The first raw day the run reads; an error naming the missing period otherwise."""
    from fraud_platform.batch.processing import date_range

    present = existing_dates(lake, RAW_TRANSACTIONS.path, date_range(run.history_start, run.as_of))
    if not present or present[0] > run.features_start:
        raise ValueError(
            f"the lake has no raw transactions on {run.features_start}: import or simulate "
            "that period first"
        )
    return present[0]


def _materialize(defs, instance, resources, stage: Stage) -> None:
    """One stage as one run of its assets and their checks."""
    import dagster as dg

    keys = {dg.AssetKey(a.split("/")) for a in stage.assets}
    assets = [a for a in defs.assets or [] if set(getattr(a, "keys", ())) & keys]
    checks = [c for c in defs.asset_checks or [] if {k.asset_key for k in c.check_keys} & keys]
    tags = {}
    if stage.first is not None:
        tags = {
            "dagster/asset_partition_range_start": stage.first,
            "dagster/asset_partition_range_end": stage.last,
        }
    result = dg.materialize(
        [*assets, *checks],
        instance=instance,
        resources=resources,
        tags={**tags, "fraud/trigger": "cli_train"},
        run_config={"ops": {op: {"config": c} for op, c in stage.config.items()}},
        raise_on_error=False,
    )
    if not result.success:
        failed = [e.message for e in result.all_events if e.is_failure] or ["see the Dagster UI"]
        raise RuntimeError(f"{stage.name} failed: {failed[-1]}")


def run_training(
    run: TrainingRun, on_stage: Callable[[str, str, str], None] = lambda *_: None
) -> dict[str, Any]:
    """Materialize every stage in order; `on_stage(name, "start" | "progress" | "done",
    detail)` reports progress. Returns the candidate's version, its evaluation report and the
    stage times."""
    import dagster as dg

    from fraud_platform.definitions import defs
    from fraud_platform.models import registry
    from fraud_platform.progress import listening
    from fraud_platform.resources import build_resources
    from fraud_platform.stack.dagster import link_instance_settings

    check_allowed(run)
    settings = Settings.from_env()
    os.environ["DAGSTER_HOME"] = str(link_instance_settings(settings.home / "dagster"))
    resources = build_resources(settings)
    lake = resources["lake"]
    stages = run.stages(raw_start(lake, run))
    times = {}
    with dg.DagsterInstance.get() as instance:
        for stage in stages:
            on_stage(stage.name, "start", "")
            began = time.monotonic()
            with listening(lambda detail, name=stage.name: on_stage(name, "progress", detail)):
                _materialize(defs, instance, resources, stage)
            times[stage.name] = time.monotonic() - began
            on_stage(stage.name, "done", f"{times[stage.name]:.0f} s")
    version = registry.latest_candidate(lake, run.as_of)
    report = registry.evaluation_report(lake, version)
    return {
        "version": version,
        "as_of": run.as_of,
        "periods": run.window.periods(run.as_of),
        "report": report,
        "metadata": registry.load_metadata(lake, version),
        "promoted": run.promote and registry.current_version(lake) == version,
        "seconds": times,
    }
