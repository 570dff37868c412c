"""`fraud-platform`: the one command-line entry point of the project."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from fraud_platform.config import Settings
from fraud_platform.models.protocol import METRICS
from fraud_platform.stack.demo import DemoWorld
from fraud_platform.stack.process import StackError
from fraud_platform.topics import DLQ_TOPICS

console = Console(stderr=True)

ARCHIVED_TOPICS = (
    "transactions-raw",
    "fraud-labels",
    "model-predictions",
    *(t.name for t in DLQ_TOPICS),
)
SERVICES_HELP = (
    "Services: redis, kafka, flink (= flink-jobmanager + flink-taskmanager), validator, "
    "archiver, scorer, dagster; on demand: traffic (live simulated payments over the world "
    "`fraud-platform run` wrote), docs (the lake's reports over HTTP). "
    "No name means all but the on-demand ones (`down`: all of them)."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Fraud-detection data platform: Kafka ingestion, Flink streaming features, a Redis
    feature store, a Parquet lake, Spark batch, an XGBoost model and a warehouse, all
    orchestrated in Dagster.

    \b
    First steps:
      fraud-platform stack up       start every service, then open http://127.0.0.1:3000
      fraud-platform stack status   what runs, where, and how much memory it uses
      fraud-platform stack down     stop everything (data is kept in .fraud-platform/)

    Settings come from FRAUD_* environment variables (see README.md).
    Every command is audited (`fraud-platform audit show`).
    """
    from fraud_platform.governance import audit

    # A gdpr command names a user: its own entry records the user's pseudonym instead.
    arguments = sys.argv[1:3] if sys.argv[1:2] == ["gdpr"] else sys.argv[1:]
    try:
        audit.note_changes(Settings.from_env())
        audit.record("cli", " ".join(["fraud-platform", *arguments]))
    except ValueError as error:  # a setting or role that is not one (the text says which)
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(2)


@main.group()
def stack() -> None:
    """Run the platform's services on this machine (loopback only).

    State, logs and pid files live in one folder, .fraud-platform/ by default
    (FRAUD_PLATFORM_HOME moves it). Missing pieces (redis-server, Java, Kafka and Flink
    jars, the PyFlink environment) are installed on first use.
    """


def _fail(error: StackError) -> None:
    console.print(f"[bold red]error:[/] {error}", highlight=False)
    sys.exit(1)


def _require(right: str, action: str, target: str) -> None:
    """Stop with the reason, before anything is done, unless the acting role holds `right`."""
    from fraud_platform.governance.rbac import AccessDenied, Right, require

    try:
        require(Right(right), action, target)
    except AccessDenied as error:
        console.print(f"[bold red]denied:[/] {error}", highlight=False)
        sys.exit(1)


def _stack():
    from fraud_platform.stack.manager import Stack

    return Stack(Settings.from_env())


@stack.command(epilog=SERVICES_HELP)
@click.argument("services", nargs=-1)
def up(services: tuple[str, ...]) -> None:
    """Install what is missing, start SERVICES and wait until each is healthy."""
    began = time.monotonic()
    try:
        the_stack = _stack()
        with console.status("starting") as status:
            results = the_stack.up(services, progress=lambda msg: status.update(msg))
    except StackError as error:
        _fail(error)
    for result in results:
        console.print(f"  {result.name:<18} {result.action:<16} {result.seconds:6.1f}s")
    console.print(f"[green]stack up[/] in {time.monotonic() - began:.1f}s")
    dagster = the_stack.services["dagster"]
    if any(r.name == "dagster" for r in results):
        console.print(f"Dagster UI: [bold]{dagster.endpoint()}[/]")


@stack.command(epilog=SERVICES_HELP)
@click.argument("services", nargs=-1)
def down(services: tuple[str, ...]) -> None:
    """Stop SERVICES (SIGTERM, then SIGKILL after a timeout); data stays on disk."""
    try:
        the_stack = _stack()
        with console.status("stopping") as status:
            the_stack.down(services or None, progress=lambda msg: status.update(msg))
    except StackError as error:
        _fail(error)
    console.print("[green]stack down[/]")


def _world_option(name: str, kind: type, help: str):
    """An option of the first run's world, its default shown from DemoWorld's own; unset, the
    recorded world's value stands (a second run keeps its history)."""
    default = getattr(DemoWorld, name)
    return click.option(f"--{name}", type=kind, help=f"{help}  [default: {default:g}]")


@main.command()
@_world_option("days", int, "Days of simulated history.")
@_world_option("volume", int, "Payments per simulated day.")
@_world_option("users", int, "Card holders.")
@_world_option("merchants", int, "Merchants.")
@_world_option("rate", float, "Live payments per second.")
@click.option("--demo/--no-demo", default=True, show_default=True, help="Simulated data, or none.")
def run(demo: bool, **given: float | None) -> None:
    """The platform's main job end to end (`make run`): services, streaming jobs, a simulated
    history backfilled by Dagster into a promoted model, then live traffic and predictions.
    What exists already is kept; a second run starts only what is missing."""
    from fraud_platform.stack.first_run import FirstRun

    world = DemoWorld(**{k: v for k, v in given.items() if v is not None}) if demo else None
    first_run = FirstRun(Settings.from_env(), world)
    began = time.monotonic()
    try:
        for title, _, seconds, detail in first_run.run(console.status):
            console.print(f"[green]\u2713[/] {title:<22} {seconds:6.1f}s  {detail}")
        outcome = first_run.summarize()
    except StackError as error:
        with console.status("stopping") as status:
            first_run.settle(lambda msg: status.update(f"stopping: {msg}"))
        _fail(error)
    _print_first_run(outcome, time.monotonic() - began)


def _print_first_run(outcome, seconds: float) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # links stay whole, wrapped, never cut with an ellipsis
    table.add_row("Dagster UI", f"[bold]{outcome.dagster_url}[/]")
    if outcome.backfill_id:
        table.add_row("backfill", f"{outcome.dagster_url}/runs/b/{outcome.backfill_id}")
    layers = ", ".join(f"{g} {n}" for g, n in sorted(outcome.materialized.items()) if n)
    table.add_row("materialized", f"{layers or 'nothing yet'} (asset partitions)")
    if outcome.model:
        shown = ("auc_roc", "average_precision", "card_precision_at_k")
        metrics = ", ".join(f"{m} {outcome.metrics[m]:.3f}" for m in shown if m in outcome.metrics)
        table.add_row("production model", f"{outcome.model} ({metrics})")
    if outcome.live_rate:
        live = f"{outcome.live_rate:g} payments/s in, {outcome.predictions:,} predictions so far"
        table.add_row("live", live)
    if outcome.dashboard_url:
        table.add_row("quality dashboard", outcome.dashboard_url)
    table.add_row("Data Docs", outcome.data_docs_url)
    table.add_row("stop", "make down (data stays in the platform's home)")
    console.print(f"[green]platform running[/] after {seconds:.0f}s")
    console.print(table)


@stack.command()
def status() -> None:
    """Show each service: running, healthy, pid, memory (RSS), restarts and endpoint."""
    rows = _stack().status()
    table = Table("service", "state", "pid", "memory", "restarts", "endpoint")
    for row in rows:
        state = (
            "[green]healthy[/]"
            if row.healthy
            else "[yellow]unhealthy[/]"
            if row.running
            else "[dim]stopped[/]"
        )
        memory = f"{row.rss_bytes / 2**20:,.0f} MiB" if row.running else ""
        restarted = f"[yellow]{row.restarts}[/]" if row.restarts else ""
        table.add_row(row.name, state, str(row.pid or ""), memory, restarted, row.endpoint)
    Console().print(table)
    if not all(row.healthy for row in rows):
        sys.exit(3)


@stack.command()
@click.argument("service")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
def logs(service: str, lines: int, follow: bool) -> None:
    """Print the end of SERVICE's log (redis, kafka, flink-jobmanager, ...)."""
    services = _stack().services
    if service not in services:
        _fail(StackError(f"unknown service {service!r}: choose one of {', '.join(services)}"))
    selected = services[service]
    for line in selected.process.tail(lines):
        click.echo(line)
    if follow:
        _follow(selected.process.log_file)


def _follow(path: Path) -> None:
    with open(path, "rb") as f:
        f.seek(0, 2)
        try:
            while True:
                chunk = f.read()
                if chunk:
                    click.echo(chunk.decode(errors="replace"), nl=False)
                else:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@stack.command()
@click.argument("sql_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait until the job finishes (bounded jobs).")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait.")
def sql(sql_file: Path, wait: bool, timeout: float) -> None:
    """Submit a Flink SQL file to the session cluster and print the job id."""
    from fraud_platform.stack.flink import submit_sql, wait_for_job

    settings = Settings.from_env()
    try:
        job_id = submit_sql(settings, sql_file.read_text(), timeout=timeout)
        click.echo(job_id)
        if wait:
            state = wait_for_job(settings, job_id, {"FINISHED", "FAILED", "CANCELED"}, timeout)
            console.print(f"job {job_id}: {state}")
            if state != "FINISHED":
                sys.exit(1)
    except StackError as error:
        _fail(error)


@main.group()
def stream() -> None:
    """The Flink streaming jobs: enrichment (job 1), aggregates (job 2), monitoring (job 3)."""


def _for_each_job(names: tuple[str, ...], action) -> None:
    """Run `action(settings, job)` on the named jobs (all by default), printing its outcome."""
    from fraud_platform.streaming.jobs import JOBS

    unknown = [n for n in names if n not in JOBS]
    if unknown:
        raise click.BadParameter(f"unknown job {unknown[0]!r}; one of {', '.join(JOBS)}")
    settings = Settings.from_env()
    try:
        for job in [JOBS[n] for n in names or JOBS]:
            console.print(f"{job.name}: {action(settings, job)}")
    except StackError as error:
        _fail(error)


@stream.command()
@click.argument("jobs", nargs=-1)
def deploy(jobs: tuple[str, ...]) -> None:
    """Deploy the jobs (all by default) unless they already run."""
    from fraud_platform.streaming import control

    _for_each_job(jobs, lambda settings, job: f"Flink job {control.deploy(settings, job)}")


@stream.command("stop")
@click.argument("jobs", nargs=-1)
def stream_stop(jobs: tuple[str, ...]) -> None:
    """Stop the jobs with a savepoint."""
    from fraud_platform.streaming import control

    _for_each_job(jobs, lambda settings, job: f"savepoint {control.stop(settings, job)}")


@stream.command()
@click.argument("jobs", nargs=-1)
def restart(jobs: tuple[str, ...]) -> None:
    """Restart the jobs from their newest savepoint or retained checkpoint."""
    from fraud_platform.streaming import control

    def resume(settings: Settings, job) -> str:
        job_id, resumed = control.restart(settings, job)
        return f"Flink job {job_id}, resumed from {resumed or 'scratch'}"

    _for_each_job(jobs, resume)


@stream.command()
def score() -> None:
    """Score transactions-enriched into model-predictions with the production model (the
    stack's scorer service). Stops cleanly on SIGTERM or Ctrl-C."""
    from fraud_platform.streaming.scorer import main as run_scorer

    run_scorer()


@stream.command("status")
def stream_status() -> None:
    """What the Flink REST API says about each job (as the Dagster sensor records it)."""
    from fraud_platform.streaming.control import FlinkJobs, observe
    from fraud_platform.streaming.jobs import JOBS

    settings = Settings.from_env()
    table = Table("job", "observation")
    for job in JOBS.values():
        metadata, _ = observe(FlinkJobs(settings), settings, job)
        table.add_row(job.name, ", ".join(f"{k}={v}" for k, v in metadata.items()))
    console.print(table)


@main.group()
def ingest() -> None:
    """Layer-1 ingestion services: the validator and the lake archivers (long-running)."""


@ingest.command()
@click.option("--workers", default=1, show_default=True, help="Validator processes.")
def validate(workers: int) -> None:
    """Validate transactions-ingest into transactions-raw and the dlq-* topics.

    Exactly once (Kafka transactions), dedup by transaction_id over 60 s in Redis, Prometheus
    metrics on FRAUD_VALIDATOR_METRICS_PORT (9308). Stops cleanly on SIGTERM or Ctrl-C.
    """
    from fraud_platform.ingestion.validator import main as run_validator

    run_validator(workers)


@ingest.command()
@click.argument("topics", nargs=-1, type=click.Choice(ARCHIVED_TOPICS))
def archive(topics: tuple[str, ...]) -> None:
    """Archive TOPICS (default: all of them, dead letters included) into the lake's Parquet
    partitions, exactly once."""
    from fraud_platform.ingestion.archiver import main as run_archiver

    run_archiver(list(topics or ARCHIVED_TOPICS))


@ingest.command()
@click.argument("topic", type=click.Choice(ARCHIVED_TOPICS))
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option(
    "--lateness-days",
    default=7.0,
    show_default=True,
    help="How long after the day events of it may still arrive.",
)
def rearchive(topic: str, day, lateness_days: float) -> None:
    """Rebuild one date of TOPIC's lake table from Kafka (idempotent repair)."""
    import os
    from datetime import timedelta

    from fraud_platform.ingestion.archiver import ROUTES
    from fraud_platform.ingestion.rearchive import rebuild_date
    from fraud_platform.resources import build_resources

    settings = Settings.from_env()
    with console.status(f"rebuilding {topic} {day:%Y-%m-%d}"):
        rows = rebuild_date(
            ROUTES[topic],
            settings.kafka_bootstrap,
            build_resources(settings)["lake"],
            day.date(),
            os.environ.get("FRAUD_TOPIC_PREFIX", ""),
            timedelta(days=lateness_days),
        )
    console.print(f"rebuilt {day:%Y-%m-%d} of {topic}: {rows:,} rows")


@ingest.command()
@click.option("--from", "start", required=True, type=click.DateTime(), help="UTC event time.")
@click.option("--to", "end", required=True, type=click.DateTime(), help="UTC, excluded.")
def replay(start, end) -> None:
    """Replay transactions-ingest messages stamped in [--from, --to) through the validator's
    rules: what transactions-raw lacks is delivered (the archiver lands it), the rest is
    counted as already delivered or dead-lettered. Running it twice writes nothing new."""
    from datetime import UTC

    from fraud_platform.ingestion.replay import replay_ingest
    from fraud_platform.ingestion.validator import ValidatorConfig

    start_ms, end_ms = (int(t.replace(tzinfo=UTC).timestamp() * 1000) for t in (start, end))
    bar, task = _progress(None, "replaying")
    with bar:
        result = replay_ingest(ValidatorConfig.from_env(), start_ms, end_ms, _moving(bar, task))
    dead = ", ".join(f"{n:,} {reason}" for reason, n in result.dead_lettered.items()) or "none"
    console.print(f"{result.read:,} messages replayed: {result.delivered:,} delivered to "
                  f"transactions-raw, {result.already_raw:,} already there, "
                  f"{result.already_dead:,} already dead-lettered, {result.repeats:,} repeats; "
                  f"newly dead-lettered: {dead}")  # fmt: skip


def _progress(total: int | None, what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    return progress, progress.add_task(what, total=total)


def _moving(bar, task):
    """A `progress(done, total)` callback that moves a bar of `_progress`."""
    return lambda done, total: bar.update(task, completed=done, total=total)


def _track(items, what: str):
    """rich's progress over a long walk (every file of the lake)."""
    from rich.progress import track

    return track(items, description=f"scanning {what}", console=console, transient=True)


@main.group()
def contracts() -> None:
    """The Avro message contracts (fraud_platform/contracts/schemas)."""


@contracts.command()
def check() -> None:
    """Fail when a schema version cannot read data written by the version before it."""
    from fraud_platform.contracts import CONTRACTS
    from fraud_platform.contracts.compatibility import check_all

    found = check_all()
    for problem in found:
        console.print(f"[bold red]incompatible:[/] {problem}", highlight=False)
    if found:
        sys.exit(1)
    names = sorted({f"{c.name} v{c.version}" for c in CONTRACTS.values()})
    console.print(f"{len(names)} schemas, every version backward compatible: {', '.join(names)}")


@main.group()
def simulate() -> None:
    """Simulated card traffic: users, merchants, payments, five fraud scenarios, late labels.

    Deterministic for a seed: the same seed and day always give the same payments.
    """


@simulate.command()
@click.option("--days", default=30, show_default=True, help="How many past days to write.")
@click.option("--volume", default=100_000, show_default=True, help="Payments per average day.")
@click.option("--seed", default=42, show_default=True)
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="First day NOT written (UTC).")
@click.option("--users", default=5_000, show_default=True)
@click.option("--merchants", default=10_000, show_default=True)
def history(days: int, volume: int, seed: int, end, users: int, merchants: int) -> None:
    """Write DAYS past days straight to the lake (raw transactions, labels, reference)."""
    from fraud_platform.resources import build_resources
    from fraud_platform.simulation.history import write_history
    from fraud_platform.simulation.reference import build_world

    lake = build_resources()["lake"]
    world = build_world(seed, users, merchants)
    progress, task = _progress(days, "days")
    with progress:
        payments, labels = write_history(
            lake,
            world,
            days,
            volume,
            end.date() if end else None,
            progress=lambda *_: progress.advance(task),
        )
    console.print(f"wrote {payments:,} payments and {labels:,} labels to {lake.root}")


@simulate.command()
@click.option("--rate", default=1000.0, show_default=True, help="Payments per second.")
@click.option("--count", default=100_000, show_default=True, help="Payments to send (0: forever).")
@click.option("--volume", default=100_000, show_default=True, help="Payments per simulated day.")
@click.option("--seed", default=42, show_default=True)
@click.option("--users", default=5_000, show_default=True)
@click.option("--merchants", default=10_000, show_default=True)
def live(rate: float, count: int, volume: int, seed: int, users: int, merchants: int) -> None:
    """Send payments into transactions-ingest at RATE per second, and due labels."""
    import os

    from fraud_platform.resources import build_resources
    from fraud_platform.simulation.live import run_live
    from fraud_platform.simulation.reference import build_world

    producer = build_resources()["kafka"].producer(**{"linger.ms": 10})
    # The stack's traffic service (stack/demo.py) proves it is alive through this file.
    heartbeat = os.environ.get("FRAUD_TRAFFIC_HEARTBEAT")
    progress, task = _progress(count or None, "payments")

    def tick(sent: int) -> None:
        progress.update(task, completed=sent)
        if heartbeat:
            Path(heartbeat).touch()

    with progress:
        sent, labels = run_live(
            build_world(seed, users, merchants),
            producer,
            rate,
            count,
            volume,
            topic_prefix=os.environ.get("FRAUD_TOPIC_PREFIX", ""),
            progress=tick,
        )
    console.print(f"sent {sent:,} payments and {labels:,} labels")


@main.command(name="import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    default="handbook",
    show_default=True,
    help="A shipped mapping name or a YAML file.",
)
@click.option(
    "--to",
    "target",
    type=click.Choice(["lake", "kafka"]),
    default="lake",
    show_default=True,
    help="Straight to the lake, or through transactions-ingest.",
)
@click.option(
    "--shift-to-now",
    is_flag=True,
    help="(kafka) move every timestamp by one offset so the newest is now.",
)
def import_(source: Path, mapping: str, target: str, shift_to_now: bool) -> None:
    """Import an external transactions file (Parquet/CSV) into the raw contract."""
    import os

    from fraud_platform.importing.importer import (
        ImportError_,
        Mapping,
        import_to_kafka,
        import_to_lake,
    )
    from fraud_platform.ingestion.rules import Rules
    from fraud_platform.resources import build_resources

    resources = build_resources()
    try:
        spec = Mapping.load(mapping)
        rejected = 0
        if target == "lake":
            with console.status("importing") as status:
                rows, labels, rejected = import_to_lake(
                    resources["lake"], source, spec, status.update
                )
        else:
            progress, task = _progress(None, "payments")
            with progress:
                rows, labels = import_to_kafka(
                    resources["kafka"].producer(**{"linger.ms": 20}),
                    source,
                    spec,
                    Rules.from_env().max_age_ms,
                    shift_to_now,
                    topic_prefix=os.environ.get("FRAUD_TOPIC_PREFIX", ""),
                    progress=lambda n: progress.update(task, completed=n),
                )
    except ImportError_ as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
    console.print(f"imported {rows:,} transactions and {labels:,} labels ({target})")
    if rejected:
        console.print(
            f"{rejected:,} rows failed the validator's rules: they are in the lake's "
            "dead_letters/, with the reason"
        )


@main.command()
@click.option(
    "--train-start",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of the training period.",
)
@click.option("--train-days", default=28, show_default=True, help="Days of training.")
@click.option(
    "--delay-days",
    type=int,
    default=None,
    help="Days between training and test whose labels are not known yet; test labels "
    "get as long to mature. Default: the label delay (FRAUD_LABEL_DELAY_DAYS, 7).",
)
@click.option("--test-days", default=7, show_default=True, help="Days of test.")
@click.option(
    "--search",
    is_flag=True,
    help="Choose the hyperparameters first by prequential validation (a grid over "
    "earlier folds); otherwise the latest search's choice, or the defaults, is used.",
)
@click.option("--folds", default=4, show_default=True, help="Validation folds of --search.")
@click.option(
    "--metric",
    type=click.Choice(METRICS),
    default="average_precision",
    show_default=True,
    help="What --search maximizes.",
)
@click.option(
    "--keep-known-compromised",
    is_flag=True,
    help="Keep the cards already known to be compromised in each test day.",
)
@click.option(
    "--promote",
    is_flag=True,
    help="Then promote the candidate if layer 5 passes (the ml_architect's right).",
)
def train(
    train_start,
    train_days: int,
    delay_days: int | None,
    test_days: int,
    search: bool,
    folds: int,
    metric: str,
    keep_known_compromised: bool,
    promote: bool,
) -> None:
    """Train and evaluate a model on any period of the lake's data, by the Fraud Detection
    Handbook's protocol, and print its metrics.

    Materializes, for that period, raw -> processed -> features -> training set -> candidate
    -> evaluation (and promotion with --promote) with the same assets and quality checks as
    the nightly run. Dagster's and Spark's output goes to a log file, named first.
    """
    from fraud_platform.capture import output_to
    from fraud_platform.governance.rbac import AccessDenied
    from fraud_platform.models.protocol import TrainingWindow
    from fraud_platform.models.train_command import TrainingRun, check_allowed

    settings = Settings.from_env()
    try:
        delay = settings.label_delay_days if delay_days is None else delay_days
        window = TrainingWindow(train_days, delay, test_days)
        run = TrainingRun(
            train_start.date(),
            window,
            search,
            folds,
            metric,
            promote,
            not keep_known_compromised,
            settings.label_delay_days,
        )
        check_allowed(run)
    except (ValueError, AccessDenied) as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
    periods = run.window.periods(run.as_of)
    log_path = settings.home / "logs" / f"train-{time.strftime('%Y%m%d-%H%M%S')}.log"
    console.print(
        f"as of {run.as_of}: train {periods.train[0]}..{periods.train[-1]}, "
        f"delay {len(periods.delay)} days, test {periods.test[0]}..{periods.test[-1]}\n"
        f"log: {log_path}",
        highlight=False,
    )
    try:
        with output_to(log_path) as terminal:
            outcome = _train_with_progress(run, Console(file=terminal))
    except Exception as error:  # a failed stage, a missing period: one line, then the log
        console.print(f"[bold red]error:[/] {error}\nsee {log_path}", highlight=False)
        sys.exit(1)
    _print_evaluation(outcome)


def _train_with_progress(run, screen: Console) -> dict:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fraud_platform.models.train_command import run_training

    columns = (
        SpinnerColumn(finished_text="[green]done"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=screen) as progress:
        tasks: dict[str, int] = {}

        def on_stage(name: str, state: str, detail: str) -> None:
            if state == "start":
                tasks[name] = progress.add_task(name, total=1)
            elif state == "progress":
                progress.update(tasks[name], description=f"{name}: {detail}")
            else:
                progress.update(tasks[name], description=name, completed=1)

        return run_training(run, on_stage)


def _print_evaluation(outcome: dict) -> None:
    metrics = outcome["report"]["metrics"]
    k = metrics["candidate"]["top_k"]
    threshold = metrics["candidate"]["threshold"]
    headers = ("AUC-ROC", "AP", f"CP@{k}", f"prec@{threshold}", f"recall@{threshold}")
    table = Table("model", *headers, "frauds/rows", title="test period")
    for name, m in metrics.items():
        figures = [m["auc_roc"], m["average_precision"], m["card_precision_at_k"]]
        figures += [m["precision_at_threshold"], m["recall_at_threshold"]]
        table.add_row(name, *(f"{x:.4f}" for x in figures), f"{m['positives']}/{m['rows']}")
    Console().print(table)
    console.print(
        "AP: average precision; CP@k: card precision, the share of compromised cards among "
        f"the {k} a day's investigators check",
        highlight=False,
    )
    chosen = outcome["metadata"]["hyperparameters"]
    origin = outcome["metadata"]["hyperparameters_from"]
    settings = ", ".join(f"{name}={value}" for name, value in chosen.items())
    console.print(f"hyperparameters ({origin['source']}): {settings}", highlight=False)
    promoted = " (promoted to production)" if outcome["promoted"] else ""
    console.print(f"candidate {outcome['version']}{promoted}", highlight=False)


@main.group()
def model() -> None:
    """The model registry in the lake (models/)."""


@model.command()
def rollback() -> None:
    """Point models/current back at the model the last promotion replaced."""
    from fraud_platform.models import registry
    from fraud_platform.resources import build_resources

    try:
        version = registry.rollback(build_resources()["lake"])
    except registry.RegistryError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
    console.print(f"models/current is {version} again")


@main.group()
def retention() -> None:
    """The retention policy (fraud_platform/governance/retention.py): transactions 7 years,
    training data and logs 90 days, models a year then archived."""


@retention.command()
@click.option("--dry-run", is_flag=True, help="List what would go; change nothing.")
def cleanup(dry_run: bool) -> None:
    """Delete or archive what the policy retires, in the lake and the platform's logs."""
    _require("read_raw", "retention.plan", "the lake and the logs")
    if not dry_run:
        _require("write_pipeline_config", "retention.cleanup", "the lake and the logs")
    from fraud_platform.governance.retention import apply_cleanup, plan_cleanup
    from fraud_platform.resources import build_resources

    settings = Settings.from_env()
    lake = build_resources(settings)["lake"]
    plan = plan_cleanup(lake, logs_dir=settings.home / "logs")
    table = Table("action", "kind", "dated", "path", title="would go" if dry_run else "retired")
    for item in plan:
        table.add_row(item.action, item.kind, str(item.dated), item.path)
    Console().print(table)
    if not dry_run:
        apply_cleanup(lake, plan)
    console.print(f"{len(plan)} item(s) {'would be retired' if dry_run else 'retired'}")


@retention.command()
def lifecycle() -> None:
    """Apply the policy's hot/warm/cold lifecycle rules to the S3 bucket of the lake."""
    from fraud_platform.governance.retention import apply_lifecycle
    from fraud_platform.resources import build_resources

    resources = build_resources()
    lake = resources["lake"]
    if not lake.is_s3:
        console.print(f"[bold red]error:[/] the lake ({lake.root}) is not on S3; set "
                      "FRAUD_LAKE_ROOT=s3://bucket/prefix", highlight=False)  # fmt: skip
        sys.exit(1)
    rules = apply_lifecycle(resources["s3"].get_client(), lake.root)
    console.print(f"{len(rules)} lifecycle rule(s) applied to {lake.root}")


@main.group(name="audit")
def audit_log() -> None:
    """The hash-chained audit log (fraud_platform/governance/audit.py)."""


@audit_log.command()
def verify() -> None:
    """Walk the chain and hold its ends against the anchor file and the warehouse's copy;
    exit 1 naming the first entry altered, removed or reordered, or the cut."""
    from fraud_platform.governance import audit

    heads, checked = {}, "the anchor file"
    try:
        head = _warehouse_audit_head()
    except Exception as error:  # the file's anchor still holds; say what was not checked
        console.print(f"[yellow]note:[/] the warehouse's copy was not checked ({error})")
    else:
        heads, checked = (
            ({"warehouse": head}, "the anchor file and the warehouse")
            if head
            else ({}, "the anchor file (the warehouse holds no entries yet)")
        )
    result = audit.verify(heads=heads)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if not result.ok:
        verified = f"{result.entries} entries verified before it"
        console.print(f"[bold red]tampered:[/] {result.problem} ({verified})", highlight=False)
        sys.exit(1)
    console.print(
        f"the audit log holds: {result.entries} entries, chain intact, its ends "
        f"agreeing with {checked}",
        highlight=False,
    )


def _warehouse_audit_head() -> tuple[int, str] | None:
    """The newest entry loaded into the warehouse; None when it holds none (or on DuckDB,
    when there is no warehouse file yet: opening one would create it)."""
    from fraud_platform.resources import build_resources
    from fraud_platform.warehouse.schema import AUDIT_LOG, create_tables
    from fraud_platform.warehouse.sources import audit_head

    warehouse = build_resources()["warehouse"]
    if warehouse.backend == "duckdb" and not Path(warehouse.duckdb_path).exists():
        return None
    with warehouse.connect() as connection:
        create_tables(connection, (AUDIT_LOG,))
        return audit_head(connection)


@audit_log.command()
@click.option(
    "--reset",
    is_flag=True,
    help="Anchor the log as it now is, forgetting the cuts "
    "found (the architect's, once they were looked into).",
)
def anchor(reset: bool) -> None:
    """The anchor of the chain's ends (kept outside the log) and the cuts it recorded."""
    from fraud_platform.governance import audit
    from fraud_platform.governance.audit_anchor import AnchorAltered

    if reset:
        _require("write_all", "audit.anchor_reset", "the audit log's anchor")
        audit.reanchor()
    try:
        held = audit.anchor()
    except AnchorAltered as error:
        console.print(f"[bold red]tampered:[/] {error}", highlight=False)
        sys.exit(1)
    if held is None:
        console.print(f"no anchor yet at {audit.anchor_path()} (the log is empty)")
        return
    console.print(
        f"{audit.anchor_path()}: entries {held.base_seq} to {held.head_seq} "
        f"({held.entries}), head {held.head_hash[:16]}",
        highlight=False,
    )
    for cut in held.cuts:
        console.print(f"[bold red]cut found:[/] {cut}", highlight=False)
    if held.cuts:
        sys.exit(1)


@audit_log.command()
@click.option("--last", "count", default=20, show_default=True, help="How many entries.")
@click.option("--action", default=None, help="Only this action (e.g. model.promote).")
def show(count: int, action: str | None) -> None:
    """The newest entries."""
    _require("read_raw", "audit.show", "the audit log")
    from fraud_platform.governance import audit

    entries = [e for e in audit.entries() if action is None or e.get("action") == action]
    table = Table("seq", "at", "actor", "role", "action", "target", "outcome")
    for entry in entries[-count:]:
        table.add_row(*(str(entry.get(k, "")) for k in ("seq", "at", "actor", "role", "action",
                                                        "target", "outcome")))  # fmt: skip
    Console().print(table)


@main.group()
def rbac() -> None:
    """Roles and rights as code (fraud_platform/governance/rbac.py)."""


@rbac.command()
def roles() -> None:
    """The roles and what each may do."""
    from fraud_platform.governance.rbac import ROLES

    table = Table("role", "rights", "in short")
    for role in ROLES.values():
        table.add_row(role.name, ", ".join(sorted(role.rights)), role.description)
    Console().print(table)


@rbac.command()
def whoami() -> None:
    """The acting account, the role its grant gives it and the role it acts as."""
    from fraud_platform.governance import grants
    from fraud_platform.governance.rbac import Actor

    actor, held = Actor.current(), grants.load()
    source = held.path if held.owner is not None else "no grants file: the install's owner"
    console.print(f"{actor.user}: granted {held.role_of(actor.user)} ({source}), "
                  f"acting as {actor.role}", highlight=False)  # fmt: skip


@rbac.command()
@click.argument("user")
@click.argument("role", required=False)
@click.option("--revoke", is_flag=True, help="Take the user's grant away.")
def grant(user: str, role: str | None, revoke: bool) -> None:
    """Give USER ROLE in the grants file (its administrator only), audited."""
    from fraud_platform.governance import audit, grants
    from fraud_platform.governance.rbac import ROLES

    if not revoke and role not in ROLES:
        console.print(f"[bold red]error:[/] name a role: {', '.join(ROLES)}", highlight=False)
        sys.exit(2)
    try:
        held = grants.grant(user, None if revoke else role)
    except grants.GrantsError as error:
        audit.record("rbac.grant", user, {"role": role}, outcome="denied")
        console.print(f"[bold red]denied:[/] {error}", highlight=False)
        sys.exit(1)
    audit.record("rbac.grant", user, {"role": None if revoke else role})
    console.print(f"{user}: {held.role_of(user)} ({held.path})", highlight=False)


@rbac.command()
@click.option("--apply", "apply_", is_flag=True, help="Run them on the Snowflake warehouse.")
def grants(apply_: bool) -> None:
    """The Snowflake roles and grants of the RBAC table (printed, or applied and audited)."""
    from fraud_platform.governance import audit
    from fraud_platform.governance.rbac import snowflake_statements
    from fraud_platform.resources import build_resources

    warehouse = build_resources()["warehouse"]
    statements = snowflake_statements(warehouse.snowflake_database, warehouse.snowflake_schema)
    if not apply_:
        click.echo(";\n".join(statements) + ";")
        return
    if warehouse.backend != "snowflake":
        console.print("[bold red]error:[/] grants apply to Snowflake; set "
                      "FRAUD_WAREHOUSE_BACKEND=snowflake (DuckDB's analyst gets its own "
                      "database instead)", highlight=False)  # fmt: skip
        sys.exit(1)
    with warehouse.connect() as connection:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement)
    audit.record("permission.grant", "snowflake", {"statements": statements})
    console.print(f"{len(statements)} statement(s) applied")


@main.group()
def gdpr() -> None:
    """The right to be forgotten (fraud_platform/governance/gdpr.py): requests, erasure in
    every store, verification, the 30-day deadline."""


def _governed():
    """The stores an erasure touches; Redis must answer first, so a stack that is down
    stops the command before a request is received or anything is changed."""
    import redis

    from fraud_platform.resources import build_resources

    resources = build_resources()
    client = resources["redis"].client()
    try:
        client.ping()
    except redis.RedisError as error:
        console.print(
            f"[bold red]error:[/] Redis is not reachable ({error}); start the stack",
            highlight=False,
        )
        sys.exit(1)
    return resources["lake"], client, resources["warehouse"]


def _footprint_table(title: str, counts: dict[str, int]) -> Table:
    table = Table("store", "rows / keys", title=title)
    for store, count in sorted(counts.items()):
        table.add_row(store, str(count))
    return table


@gdpr.command()
@click.option("--user", "user_id", required=True, help="The user's id.")
def request(user_id: str) -> None:
    """Receive a request (its deadline is 30 days on); erase it later by its id."""
    _require("erase_user_data", "gdpr.request", "a user's data")
    from fraud_platform.governance import gdpr as forgetting
    from fraud_platform.resources import build_resources

    received = forgetting.receive(build_resources()["lake"], user_id)
    console.print(f"request {received['request_id']} received, due {received['deadline']}")


@gdpr.command()
@click.option("--user", "user_id", default=None, help="Receive and erase this user now.")
@click.option("--request", "request_id", default=None, help="Erase a received request.")
def erase(user_id: str | None, request_id: str | None) -> None:
    """Plan, then erase a user store by store (a stopped run resumes), then verify."""
    from fraud_platform.governance import gdpr as forgetting

    if (user_id is None) == (request_id is None):
        console.print("[bold red]error:[/] give --user ID or --request ID", highlight=False)
        sys.exit(2)
    _require("erase_user_data", "gdpr.erase", "a user's data")  # before any request is kept
    lake, redis_client, warehouse = _governed()
    request_id = request_id or forgetting.receive(lake, user_id)["request_id"]
    try:
        done = forgetting.erase(lake, redis_client, warehouse, request_id, track=_track)
    except forgetting.ErasureError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
    Console().print(_footprint_table(f"erased ({done['pseudonym']})", done["erased"]))
    console.print(f"request {request_id}: {done['status']}, no trace left")


@gdpr.command(name="verify")
@click.option("--user", "user_id", required=True)
def gdpr_verify(user_id: str) -> None:
    """Search every store for the user, by query and as bytes in every file; list every
    place a trace survived and exit 1 if there is any."""
    _require("read_raw", "gdpr.verify", "a user's data")
    from fraud_platform.governance import gdpr as forgetting

    found = forgetting.find_traces(*_governed(), user_id, track=_track)
    if found.total:
        Console().print(_footprint_table("traces found", found.counts))
        sys.exit(1)
    console.print(
        "no trace in the lake (every file), Redis (every database and its files), the "
        "warehouse (rows and file), Dagster's storage, Flink's checkpoints or the logs"
    )


@gdpr.command(name="status")
def gdpr_status() -> None:
    """Every request with its deadline; overdue ones in red."""
    from fraud_platform.governance import gdpr as forgetting
    from fraud_platform.resources import build_resources

    table = Table("request", "pseudonym", "received", "deadline", "days left", "status")
    for item in forgetting.requests(build_resources()["lake"]):
        late = item["status"] != "verified" and item["days_left"] < 0
        status = f"[red]{item['status']} (overdue)[/]" if late else item["status"]
        table.add_row(item["request_id"], item["pseudonym"], item["received_at"][:10],
                      item["deadline"][:10], str(item["days_left"]), status)  # fmt: skip
    Console().print(table)


@main.group()
def pci() -> None:
    """Card data protection (fraud_platform/governance/pci.py)."""


STORES = ("kafka", "lake", "redis", "warehouse", "files")


@pci.command()
@click.option("--store", "stores", multiple=True, type=click.Choice(STORES),
              help="Only these stores (repeatable); all of them by default.")  # fmt: skip
def scan(stores: tuple[str, ...]) -> None:
    """Search every store for card numbers; exit 1 if any is found."""
    _require("read_raw", "pci.scan", ",".join(stores or STORES))
    from fraud_platform.governance import audit, pan_scan
    from fraud_platform.resources import build_resources

    settings = Settings.from_env()
    resources = build_resources(settings)
    scanners = {
        "kafka": lambda: pan_scan.scan_kafka(settings.kafka_bootstrap),
        "lake": lambda: pan_scan.scan_lake(resources["lake"], track=_track),
        "redis": lambda: pan_scan.scan_redis(resources["redis"].client()),
        "warehouse": lambda: pan_scan.scan_warehouse(resources["warehouse"]),
        "files": lambda: pan_scan.scan_files(settings, track=_track),
    }
    findings = []
    for store in stores or STORES:
        console.print(f"scanning {store}...")
        findings += scanners[store]()
    audit.record("pci.scan", ",".join(stores or STORES), {"findings": len(findings)},
                 outcome="ok" if not findings else "card numbers found")  # fmt: skip
    if findings:
        table = Table("store", "where", "card", title="card numbers found")
        for finding in findings:
            table.add_row(finding.store, finding.where, finding.masked)
        Console().print(table)
        sys.exit(1)
    console.print(f"no card number in {', '.join(stores or STORES)}")


@main.group()
def backup() -> None:
    """Backups in the lake and the inventory of every copy recovery can start from
    (fraud_platform/recovery/backups.py)."""


def _backed_up(what: str, take) -> None:
    """Run a backup (it audits itself); a refusal is audited and exits 1 with the reason."""
    from fraud_platform.governance import audit
    from fraud_platform.recovery.backups import BackupError

    try:
        copy = take()
    except BackupError as error:
        audit.record(f"backup.{what}", what, {}, outcome=str(error))
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
    console.print(f"{what}: {copy.files} file(s), {copy.bytes:,} bytes -> {copy.path}")


@backup.command("redis")
def backup_redis() -> None:
    """Snapshot Redis (BGSAVE) and copy the RDB into the lake."""
    from fraud_platform.recovery import backups
    from fraud_platform.resources import build_resources

    resources = build_resources()
    _backed_up("redis", lambda: backups.snapshot_redis(resources["redis"].client(),
                                                      resources["lake"]))  # fmt: skip


@backup.command("warehouse")
def backup_warehouse() -> None:
    """Export every warehouse table to Parquet in the lake."""
    from datetime import UTC, datetime

    from fraud_platform.recovery import backups
    from fraud_platform.resources import build_resources

    resources = build_resources()

    def take():
        with resources["warehouse"].connect() as connection:
            return backups.export_warehouse(connection, resources["lake"], datetime.now(UTC))

    _backed_up("warehouse", take)


@backup.command("models")
def backup_models() -> None:
    """Copy the model registry (candidates, pointer, history) in the lake."""
    from datetime import UTC, datetime

    from fraud_platform.recovery import backups
    from fraud_platform.resources import build_resources

    lake = build_resources()["lake"]
    _backed_up("models", lambda: backups.export_models(lake, datetime.now(UTC)))


@backup.command()
def inventory() -> None:
    """List every kind of backup: copies, the newest and its age; exit 1 if a scheduled one
    is missing or stale."""
    from datetime import UTC, datetime

    from fraud_platform.recovery import backups
    from fraud_platform.resources import build_resources

    settings = Settings.from_env()
    now = datetime.now(UTC)
    holdings = backups.inventory(settings.home, build_resources(settings)["lake"])
    table = Table("backup", "taken", "copies", "newest (UTC)", "age", "status", "where",
                  title="backups")  # fmt: skip
    colours = {"ok": "green", "none": "yellow", "stale": "red", "missing": "red"}
    for holding in holdings:
        age, status = holding.age(now), holding.status(now)
        table.add_row(holding.kind, holding.taken, str(holding.copies),
                      f"{holding.newest:%Y-%m-%d %H:%M:%S}" if holding.newest else "-",
                      str(age).split(".")[0] if age is not None else "-",
                      f"[{colours[status]}]{status}[/]", holding.where)  # fmt: skip
    Console(width=200).print(table)
    if any(h.status(now) in ("stale", "missing") for h in holdings):
        sys.exit(1)


@main.group()
def restore() -> None:
    """Put backups back (fraud_platform/recovery/restore.py)."""


@restore.command("redis")
@click.option("--snapshot", help="A snapshot path in the lake; the newest by default.")
def restore_redis(snapshot: str | None) -> None:
    """Copy a Redis snapshot from the lake into the running Redis: keys it lacks come back
    with their TTLs, keys it has (written since) are kept. Then rebuild from the lake the
    windows of every user and merchant with events since the snapshot."""
    from fraud_platform.governance import audit
    from fraud_platform.recovery import restore as restoring
    from fraud_platform.recovery.backups import BackupError
    from fraud_platform.resources import build_resources

    resources = build_resources()
    bar, task = _progress(None, "restoring keys")
    try:
        with bar:
            result, rebuild = restoring.restore_online_store(
                resources["redis"].client(), resources["lake"], snapshot or "",
                _moving(bar, task),
            )  # fmt: skip
    except BackupError as error:
        audit.record("restore.redis", snapshot or "newest", {}, outcome=str(error))
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
    console.print(f"{result.restored:,} keys restored from {result.snapshot}; "
                  f"{result.kept_live:,} kept as Redis had them (written since)")  # fmt: skip
    entities = ", ".join(f"{n:,} {kind}s" for kind, n in rebuild.entities.items())
    console.print(
        f"windows rebuilt from the lake for {entities} with events since the "
        f"snapshot: {rebuild.written:,} written, {rebuild.kept:,} newer kept"
    )


@restore.command("lake-date")
@click.argument("topic", type=click.Choice(ARCHIVED_TOPICS))
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]))
def restore_lake_date(topic: str, day) -> None:
    """The corruption runbook for one date of TOPIC's lake table: name its damaged files,
    move all its files to the quarantine, rebuild it from Kafka, and check it again; exit 1
    if it is still damaged or fails a check."""
    import os

    from fraud_platform.ingestion.archiver import ROUTES
    from fraud_platform.recovery.corruption import quality_checks, repair_date
    from fraud_platform.resources import build_resources

    settings = Settings.from_env()
    lake, route = build_resources(settings)["lake"], ROUTES[topic]
    with console.status(f"repairing {topic} {day:%Y-%m-%d}"):
        repair = repair_date(route, settings.kafka_bootstrap, lake, day.date(),
                             os.environ.get("FRAUD_TOPIC_PREFIX", ""),
                             quality_checks(route, lake))  # fmt: skip
    for damage in repair.damaged:
        console.print(f"damaged: {damage.path}: {damage.reason}", highlight=False)
    console.print(f"{len(repair.quarantined)} file(s) quarantined; {repair.rows:,} rows rebuilt "
                  f"from Kafka; checks: {repair.checks or 'none for this table'}")  # fmt: skip
    if not repair.healthy:
        for damage in repair.damaged_after:
            console.print(f"[bold red]still damaged:[/] {damage.path}: {damage.reason}")
        sys.exit(1)


if __name__ == "__main__":
    main()
