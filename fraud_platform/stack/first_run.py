"""The first run (`fraud-platform run`, `make run`): the platform's main job end to end.

Services up, the Flink jobs deployed, a simulated history in the lake, the nightly job's
assets backfilled over it by the orchestrator (a model trained, evaluated and promoted through
the blocking checks on the last day), then live traffic through the validator, the Flink jobs
and the scorer until predictions flow. Every step first looks at what exists, so a second run
starts only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fraud_platform.config import Settings
from fraud_platform.models.protocol import TrainingWindow
from fraud_platform.stack.dagster_api import BackfillState, DagsterApi
from fraud_platform.stack.demo import DemoWorld
from fraud_platform.stack.manager import Stack
from fraud_platform.stack.process import StackError

# The nightly job's layers (sensors/schedules.py BATCH_GROUPS): the raw, processed and
# warehouse layers over every day of the history; the features over the days one training set
# reads (the history before them is their windows' warm-up: a model trained on features whose
# 90-day windows are still filling would fail the pre-training drift check); the model, its
# report and the online profiles on the last day only.
EVERY_DAY = (
    "raw/transactions",
    "raw/labels",
    "raw/predictions",
    "processed/transactions",
    "warehouse/date_dimension",
    "warehouse/transactions_fact",
    "warehouse/model_predictions_fact",
    "warehouse/daily_business_metrics",
)
TRAINING_DAYS = ("features/transaction_features",)
LAST_DAY = (
    "features/entity_profiles",  # a day's profiles replace the last in Redis: the newest will do
    "training/training_set",
    "models/candidate",
    "models/evaluation",
    "models/production",
    "quality/dashboard",
)
BACKFILL_TIMEOUT_S = 1_500.0
PREDICTIONS_TIMEOUT_S = 240.0

Report = Callable[[str], None]  # the running step's detail, for the progress display


@dataclass
class Outcome:
    """What the summary prints."""

    steps: list[tuple[str, float, str]] = field(default_factory=list)
    dagster_url: str = ""
    backfill_id: str | None = None
    materialized: dict[str, int] = field(default_factory=dict)  # group -> asset partitions
    model: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    live_rate: float = 0.0  # payments per second sent
    predictions: int = 0  # on model-predictions when they were seen arriving
    dashboard_url: str = ""
    data_docs_url: str = ""


class FirstRun:
    def __init__(self, settings: Settings, world: DemoWorld | None) -> None:
        self.settings = settings
        self.stack = Stack(settings)
        self.world = world  # None: no demo data, the services only
        self.api = DagsterApi(self.stack.services["dagster"].url)
        self.outcome = Outcome(dagster_url=self.api.url)
        # the work left running in the background: the history, each Flink job's deployment
        self._history: Future[str] | None = None
        self._history_progress = "starting"
        self._deploys: dict[str, Future[str]] = {}

    def steps(self) -> list[tuple[str, Callable[[Report], str]]]:
        """The history is written while the services start (it needs none of them), and the
        Flink jobs deploy in the background (most of their minute is waiting for the
        cluster) beside the backfill; each is waited for where it is needed."""
        steps = []
        if self.world is not None:
            steps.append(("simulated history", self.start_history))
        steps += [("services", self.services), ("streaming jobs", self.start_streaming_jobs)]
        if self.world is not None:
            steps += [
                ("simulated history written", self.history_written),
                ("nightly job backfill", self.backfill),
            ]
        steps.append(("streaming jobs running", self.streaming_jobs_running))
        if self.world is not None:
            steps += [("live traffic", self.traffic), ("predictions", self.predictions)]
        return steps

    def run(self, status: Callable[[str], Any]) -> Iterator[tuple[str, float, float, str]]:
        """Runs the steps in turn, each inside `status(title)` (a context giving an object
        whose `update` shows its progress, e.g. rich's `Console.status`); yields each step's
        title, start (epoch seconds), seconds and detail as it ends."""
        for title, step in self.steps():
            started = time.time()
            with status(title) as shown:
                detail = step(lambda msg, title=title, shown=shown: shown.update(f"{title}: {msg}"))
            yield title, started, time.time() - started, detail

    def services(self, report: Report) -> str:
        results = self.stack.up(names=(), progress=report)
        self.stack.up(["docs"], progress=report)
        started = [r.name for r in results if r.action == "started"]
        return f"{len(started)} started" if started else "all running"

    def start_streaming_jobs(self, report: Report) -> str:
        from fraud_platform.streaming.jobs import JOBS

        pool = ThreadPoolExecutor(max_workers=len(JOBS), thread_name_prefix="deploy")
        self._deploys = {name: pool.submit(self._deploy, job) for name, job in JOBS.items()}
        pool.shutdown(wait=False)
        return "deploying in the background"

    def _deploy(self, job) -> str:
        """How the job came to run: kept if it was running, else its deployment's time."""
        from fraud_platform.streaming import control

        if control.running_id(self.settings, job):
            return "running"
        began = time.monotonic()
        control.deploy(self.settings, job)
        return f"deployed in {time.monotonic() - began:.0f}s"

    def streaming_jobs_running(self, report: Report) -> str:
        while not all(f.done() for f in self._deploys.values()):
            report("waiting for " + ", ".join(n for n, f in self._deploys.items() if not f.done()))
            wait(self._deploys.values(), timeout=1)
        return ", ".join(f"{name} {future.result()}" for name, future in self._deploys.items())

    def start_history(self, report: Report) -> str:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history")
        self._history = pool.submit(self.history, self._note_history)
        pool.shutdown(wait=False)
        return "kept" if self._recorded() else "writing in the background"

    def _recorded(self) -> DemoWorld | None:
        """The world of an earlier run, once its history is written."""
        recorded = DemoWorld.load(self.settings)
        return recorded if recorded is not None and recorded.history_end else None

    def _note_history(self, progress: str) -> None:
        self._history_progress = progress

    def settle(self, report: Report) -> None:
        """Waits for the work left in the background (the history, the deploys) after a step
        failed, saying what it waits for: it ends first, so nothing is left half done."""
        pending = {"the history": self._history}
        pending |= {f"the {name} deployment": f for name, f in self._deploys.items()}
        for what, future in pending.items():
            while future is not None and not future.done():
                report(f"waiting for {what} to end")
                wait([future], timeout=1)

    def history_written(self, report: Report) -> str:
        while not self._history.done():
            report(self._history_progress)
            wait([self._history], timeout=1)
        return self._history.result()

    def history(self, report: Report) -> str:
        """The recorded world's history, written once: a later run keeps it (and its world,
        whatever sizes it is given; only the live rate can change)."""
        from fraud_platform.resources import build_resources
        from fraud_platform.simulation.history import write_history
        from fraud_platform.simulation.reference import build_world

        recorded = self._recorded()
        if recorded is not None:
            self.world = replace(recorded, rate=self.world.rate)
            self.world.save(self.settings)
            return f"kept: {recorded.days} days up to {recorded.history_end}"
        world, began = self.world, time.monotonic()
        end = datetime.now(UTC).date()
        written = [0]

        def advance(rows: int, _labels: int) -> None:
            written[0] += 1
            report(f"day {written[0]}/{world.days}")

        lake = build_resources(self.settings)["lake"]
        built = build_world(world.seed, world.users, world.merchants)
        payments, labels = write_history(lake, built, world.days, world.volume, end, advance)
        self.world = replace(world, history_end=(end - timedelta(days=1)).isoformat())
        self.world.save(self.settings)
        seconds = time.monotonic() - began
        return f"{payments:,} payments, {labels:,} labels over {world.days} days in {seconds:.0f}s"

    def _days(self) -> dict[str, int]:
        """How many days, up to the history's last, each asset is backfilled over."""
        delay = self.settings.label_delay_days
        training = TrainingWindow(self.world.train_days, delay, TrainingWindow.test_days)
        return {
            **dict.fromkeys(EVERY_DAY, self.world.days),
            **dict.fromkeys(TRAINING_DAYS, min(training.window_days, self.world.days)),
            **dict.fromkeys(LAST_DAY, 1),
        }

    def _ranges(self) -> dict[str, tuple[str, str]]:
        last = date.fromisoformat(self.world.history_end)
        return {
            key: ((last - timedelta(days=days - 1)).isoformat(), last.isoformat())
            for key, days in self._days().items()
        }

    def backfill(self, report: Report) -> str:
        """One backfill in the UI; skipped when every asset has its days already."""
        done = self.api.materialized()
        if all(done.get(key, ("", 0))[1] >= days for key, days in self._days().items()):
            return "kept: every asset has its days"
        backfill_id = self.api.launch_backfill(
            "first run", self._ranges(), {"fraud/trigger": "first_run"}
        )
        self.outcome.backfill_id = backfill_id
        state = self._follow(backfill_id, report)
        if not state.succeeded:
            raise StackError(
                f"the backfill ended {state.status} ({state.failed} asset partitions failed): "
                f"see {self.api.url}/runs/b/{backfill_id}"
            )
        return f"{state.materialized} asset partitions materialized"

    def _follow(self, backfill_id: str, report: Report) -> BackfillState:
        deadline = time.monotonic() + BACKFILL_TIMEOUT_S
        while time.monotonic() < deadline:
            state = self.api.backfill(backfill_id)
            report(f"{state.materialized}/{state.targeted} asset partitions")
            if state.finished:
                return state
            time.sleep(2)
        raise StackError(
            f"the backfill did not finish within {BACKFILL_TIMEOUT_S:.0f}s: "
            f"see {self.api.url}/runs/b/{backfill_id}"
        )

    def traffic(self, report: Report) -> str:
        self.stack.up(["traffic"], progress=report)
        self.outcome.live_rate = self.world.rate
        return f"{self.world.rate:g} payments/s into transactions-ingest"

    def predictions(self, report: Report) -> str:
        """Waits for the scorer's predictions to grow. They come in steps: the Flink jobs
        write exactly once, so their output is committed at each checkpoint."""
        from fraud_platform.topics import MODEL_PREDICTIONS

        first = predictions_count(self.settings, MODEL_PREDICTIONS.name)
        deadline = time.monotonic() + PREDICTIONS_TIMEOUT_S
        while (now := predictions_count(self.settings, MODEL_PREDICTIONS.name)) <= first:
            if time.monotonic() > deadline:
                raise StackError(
                    f"no prediction within {PREDICTIONS_TIMEOUT_S:.0f}s: see "
                    "`fraud-platform stack logs scorer` and `fraud-platform stream status`"
                )
            report("waiting for the first predictions (the Flink jobs commit at checkpoints)")
            time.sleep(2)
        self.outcome.predictions = now
        return f"arriving ({now:,} so far)"

    def summarize(self) -> Outcome:
        """The materialized layers, the production model and where the reports are."""
        from fraud_platform.models import registry
        from fraud_platform.resources import build_resources

        outcome = self.outcome
        for group, count in self.api.materialized().values():
            outcome.materialized[group] = outcome.materialized.get(group, 0) + count
        lake = build_resources(self.settings)["lake"]
        outcome.model = registry.current_version(lake)
        report = registry.evaluation_report(lake, outcome.model) if outcome.model else None
        if report:
            outcome.metrics = report["metrics"]["candidate"]
        docs = self.settings.docs_url
        if self.world is not None and self.world.history_end:
            outcome.dashboard_url = (
                f"{docs}/data_quality_reports/date={self.world.history_end}/dashboard.html"
            )
        outcome.data_docs_url = f"{docs}/data_quality_reports/"
        return outcome


def predictions_count(settings: Settings, topic: str) -> int:
    """Messages ever written to `topic` (the sum of its partitions' end offsets)."""
    from confluent_kafka import Consumer, TopicPartition

    from fraud_platform.messaging import partitions_of

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "first-run"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
            for p in partitions_of(consumer, topic)
        )
    finally:
        consumer.close()
