"""The first run's plan (what it backfills over which days), its recorded world, and the
stack's on-demand services, without starting anything."""

from datetime import date, timedelta

from fraud_platform.config import Settings
from fraud_platform.resources import LakeResource
from fraud_platform.stack.dagster_api import BackfillState
from fraud_platform.stack.demo import DemoWorld
from fraud_platform.stack.first_run import LAST_DAY, TRAINING_DAYS, FirstRun
from fraud_platform.stack.manager import Stack


def test_the_world_is_recorded_for_the_traffic_and_the_next_run(tmp_path):
    settings = Settings(home=tmp_path)
    assert DemoWorld.load(settings) is None
    world = DemoWorld(days=40, rate=5.0, history_end="2026-11-30")
    world.save(settings)
    assert DemoWorld.load(settings) == world
    command = Stack(settings).services["traffic"].command()
    assert command[command.index("--rate") + 1] == "5.0"
    assert command[command.index("--count") + 1] == "0"  # forever


def test_the_backfill_covers_the_history_the_training_window_and_the_last_day(tmp_path):
    world = DemoWorld(days=90, train_days=7, history_end="2026-12-02")
    run = FirstRun(Settings(home=tmp_path), world)
    ranges = run._ranges()
    assert ranges["raw/transactions"] == ("2026-09-04", "2026-12-02")  # 90 days
    first = date(2026, 12, 2) - timedelta(days=27)  # train 7, delay 7, test 7, maturity 7
    assert ranges[TRAINING_DAYS[0]] == (first.isoformat(), "2026-12-02")
    assert all(ranges[key] == ("2026-12-02", "2026-12-02") for key in LAST_DAY)


def test_traffic_and_docs_start_only_when_named_and_stop_with_the_rest(tmp_path):
    stack = Stack(Settings(home=tmp_path))
    plain_up = [s.name for s in stack.select((), on_demand=False)]
    assert "traffic" not in plain_up and "docs" not in plain_up and "dagster" in plain_up
    assert {"traffic", "docs"} <= {s.name for s in stack.select(())}
    assert [s.name for s in stack.select(["traffic"], on_demand=False)] == ["traffic"]


def test_a_backfill_succeeds_only_when_it_completed_without_a_failed_partition():
    assert BackfillState("REQUESTED", 10, 3, 0).finished is False
    assert BackfillState("COMPLETED_SUCCESS", 10, 10, 0).succeeded
    assert not BackfillState("COMPLETED_FAILED", 10, 7, 3).succeeded
    assert BackfillState("COMPLETED_FAILED", 10, 7, 3).finished
    # every partition materialized: done, before the daemon's next tick marks it so
    assert BackfillState("REQUESTED", 10, 10, 0).finished
    assert BackfillState("REQUESTED", 10, 10, 0).succeeded
    assert not BackfillState("REQUESTED", 0, 0, 0).finished


def test_reports_under_analytics_get_a_browser_link_on_a_local_lake_only():
    local = LakeResource(root="/lake", docs_url="http://127.0.0.1:3080")
    link = local.link("analytics/data_quality_reports/date=2026-12-02/dashboard.html")
    assert (
        link["open"].url
        == "http://127.0.0.1:3080/data_quality_reports/date=2026-12-02/dashboard.html"
    )
    assert local.link("models/current") == {}
    assert LakeResource(root="s3://bucket/lake", docs_url="http://x").link("analytics/a") == {}


def test_a_recorded_history_is_kept_with_its_world_and_only_the_new_rate(tmp_path):
    settings = Settings(home=tmp_path)
    DemoWorld(days=40, volume=300, rate=5.0, history_end="2026-11-30").save(settings)
    run = FirstRun(settings, DemoWorld(days=90, rate=50.0))
    assert run.start_history(lambda _: None) == "kept"
    assert run.history_written(lambda _: None) == "kept: 40 days up to 2026-11-30"
    assert (run.world.days, run.world.volume, run.world.rate) == (40, 300, 50.0)
    assert DemoWorld.load(settings).rate == 50.0


def test_after_a_failed_step_the_background_work_is_waited_for_and_named(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Event

    run = FirstRun(Settings(home=tmp_path), DemoWorld())
    release = Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        run._history = pool.submit(release.wait, 10)
        said = []

        def report(message: str) -> None:
            said.append(message)
            release.set()  # the history ends once the user has been told what is awaited

        run.settle(report)
        assert run._history.done()
    assert said[0] == "waiting for the history to end"


def test_each_step_runs_inside_its_status_and_its_time_and_detail_come_back(tmp_path):
    from contextlib import contextmanager

    shown = []

    class Shown:
        def update(self, message: str) -> None:
            shown.append(message)

    @contextmanager
    def status(title: str):
        shown.append(f"[{title}]")
        yield Shown()

    run = FirstRun(Settings(home=tmp_path), None)
    run.steps = lambda: [("one", lambda report: report("half way") or "done")]
    ((title, started, seconds, detail),) = list(run.run(status))
    assert (title, detail) == ("one", "done") and started > 0 and seconds >= 0
    assert shown == ["[one]", "one: half way"]
