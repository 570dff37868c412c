"""End-to-end latency raw -> enriched of the enrichment job, against a bare Kafka round trip
at the same rate, in one run.

    uv run python benchmarks/streaming/bench_enrichment_latency.py [--rates 1000 5000]

For each rate, simulated live transactions go onto a fresh transactions-raw (record time =
send time) while a consumer of transactions-enriched notes when each arrives:
  - processing latency: read uncommitted, i.e. as soon as the job has written the record;
  - committed latency: read committed, what a transactional reader sees: the exactly-once
    sink commits with each checkpoint, so this is bounded by the checkpoint interval
    (`--checkpoint`, 1 s here; 60 s by default in the platform).
Two floors at the same rate: the bare engine, a PyFlink job with the same source, keying,
one Python step and exactly-once sink that forwards each message untouched (`passthrough`);
and a bare confluent-kafka producer -> topic -> consumer. Prints P50/P95/P99 in ms, the
ratios to both floors, and the rate each job sustained. Starts Redis,
Kafka and Flink when they are not running and stops what it started.

Each job first gets `--warm-up` seconds of the same traffic, reported on rows of its own: on
JVMs just started (the task manager, the broker) the JIT compilers take both cores for about
20 s once steady traffic begins, and whichever job met that traffic first paid for the
other's compiled code.
"""

from __future__ import annotations

import argparse
import struct
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from fraud_platform.config import Settings
from fraud_platform.contracts import TRANSACTION
from fraud_platform.lake import transaction_record
from fraud_platform.messaging import consume_ready
from fraud_platform.resources import LakeResource
from fraud_platform.simulation.history import epoch_day, write_reference
from fraud_platform.simulation.reference import build_world
from fraud_platform.simulation.traffic import generate_day
from fraud_platform.stack.manager import Stack
from fraud_platform.streaming.control import FlinkJobs, deploy
from fraud_platform.streaming.jobs import ENRICHMENT, PASSTHROUGH, Deployment
from fraud_platform.topics import TRANSACTIONS_RAW, ensure_topics, topic_name

console = Console(width=150)


class Arrivals(threading.Thread):
    """Consumes a topic and notes each message's arrival time (ms) by key."""

    def __init__(self, bootstrap: str, topic: str, isolation: str, key_of) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest", "isolation.level": isolation,
            "fetch.wait.max.ms": 5, "enable.auto.commit": False,
        })  # fmt: skip
        self.consumer.subscribe([topic])
        self.key_of = key_of
        self.arrived: dict[str, float] = {}
        self.stopping = False

    def run(self) -> None:
        while not self.stopping:
            for message in consume_ready(self.consumer, 1000, timeout=0.05):
                if message.error() is None:
                    self.arrived[self.key_of(message)] = time.time() * 1000
        self.consumer.close()


def send(bootstrap: str, topic: str, values: list[tuple[str, str, bytes]], rate: float) -> dict:
    """Send (id, key, value) at `rate` per second; returns id -> send time (ms)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    sent, began = {}, time.monotonic()
    for i, (ident, key, value) in enumerate(values):
        delay = i / rate - (time.monotonic() - began)
        if delay > 0:
            time.sleep(delay)
        now = int(time.time() * 1000)
        producer.produce(topic, value, key, timestamp=now)
        sent[ident] = now
        producer.poll(0)
    producer.flush(60)
    return sent


def ratios(values: np.ndarray, floor: np.ndarray) -> str:
    return "/".join(f"{v / f:.1f}" for v, f in zip(values, floor, strict=True))


def percentiles(sent: dict, arrived: dict, skip: int = 0) -> tuple[np.ndarray, int]:
    ids = list(sent)[skip:]
    latencies = np.array([arrived[i] - sent[i] for i in ids if i in arrived])
    return np.percentile(latencies, [50, 95, 99]), len(ids) - len(latencies)


def warm_up(settings, raw: str, readers: list[Arrivals], values: list,
            rate: float) -> tuple[dict, dict]:  # fmt: skip
    """Send `values` at `rate` and wait until every reader has seen them all (the committed
    one at the next checkpoint), so the measured phase starts on a job, a task manager and
    a broker past their start; returns the warm-up's sent and (uncommitted) arrival times."""
    sent = send(settings.kafka_bootstrap, raw, values, rate)
    timeout = 120 + len(values) / 1000  # a checkpoint, and a backlog drained at >= 1,000/s
    deadline = time.monotonic() + timeout
    while any(len(reader.arrived) < len(values) for reader in readers):
        if time.monotonic() > deadline:
            seen = min(len(reader.arrived) for reader in readers)
            raise TimeoutError(f"the job wrote {seen} of {len(values)} warm-up transactions "
                               f"within {timeout:.0f}s")  # fmt: skip
        time.sleep(0.1)
    arrived = dict(readers[0].arrived)
    for reader in readers:
        reader.arrived.clear()
    return sent, arrived


def job_latency(settings, lake: str, workload: tuple[list, list], rate: float, options,
                job) -> dict:  # fmt: skip
    """Latency of `job` from a fresh transactions-raw to its transactions-enriched, once it
    has written the warm-up transactions."""
    warm, values = workload
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    ensure_topics(settings.kafka_bootstrap, prefix=prefix)
    deployment = Deployment(topic_prefix=prefix, lake_root=lake,
                            checkpoint_interval=options.checkpoint,
                            parallelism=options.parallelism)  # fmt: skip
    job_id = deploy(settings, job, deployment)
    enriched = topic_name("transactions-enriched", prefix)
    readers = [Arrivals(settings.kafka_bootstrap, enriched, iso, transaction_id)
               for iso in ("read_uncommitted", "read_committed")]  # fmt: skip
    for reader in readers:
        reader.start()
    raw = topic_name("transactions-raw", prefix)
    warm_sent, warm_arrived = warm_up(settings, raw, readers, warm, rate)
    began = time.monotonic()
    sent = send(settings.kafka_bootstrap, raw, values, rate)
    deadline = time.monotonic() + 120
    while len(readers[1].arrived) < len(values) and time.monotonic() < deadline:
        time.sleep(0.5)
    drained = time.monotonic() - began
    for reader in readers:
        reader.stopping = True
    FlinkJobs(settings).cancel(job_id)
    warm_seconds = len(warm) / rate
    return {
        "warm-up": percentiles(warm_sent, warm_arrived),
        "processing": percentiles(sent, readers[0].arrived),
        "committed": percentiles(sent, readers[1].arrived),
        "sustained": len(readers[1].arrived) / drained,
        # The wait for the warm-up's checkpoint is left out: the measured sends follow on.
        "timeline": [
            timeline(warm_sent, warm_arrived, 0),
            timeline(sent, readers[0].arrived, warm_seconds),
        ],
    }


def timeline(sent: dict, arrived: dict, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """(`offset` + seconds since the first send, latency ms) of each arrived message."""
    ids = [i for i in sent if i in arrived]
    start = min(sent.values())
    return (np.array([offset + (sent[i] - start) / 1000 for i in ids]),
            np.array([arrived[i] - sent[i] for i in ids]))  # fmt: skip


def plot_timelines(path: str, rate: float, warm_seconds: float, runs: dict[str, list]) -> None:
    """Latency against seconds of traffic per job, the warm-up included: stalls, the JIT's
    start and the catch-up after them show as spikes or plateaus, which percentiles alone
    cannot tell from a steady lag."""
    from fraud_platform.plots import figure

    with figure(9, 3.6) as (axis, out):
        for name, parts in runs.items():
            when, latency = (np.concatenate(series) for series in zip(*parts, strict=True))
            axis.plot(when, latency, ".", markersize=1.5, label=name)
        axis.axvline(warm_seconds, color="grey", linestyle="--", label="measured from here")
        axis.set_yscale("log")
        axis.set(xlabel="seconds of traffic (warm-up, then the measured sends)",
                 ylabel="raw -> enriched, ms",
                 title=f"latency over time at {rate:.0f}/s")  # fmt: skip
        axis.legend(markerscale=6)
    Path(path).write_bytes(out["png"])


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """An Avro long at `pos` and the position after it."""
    shift = result = 0
    while True:
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


RAW_ID = struct.pack(">I", TRANSACTION.schema_id)


def transaction_id(message) -> str:
    """The transaction id of an enriched message, or of a raw one the passthrough forwards:
    the first field of both contracts (raw's is a union, its branch index comes first), read
    without decoding the rest, so the readers take as little CPU from the job as they can."""
    value = message.value()
    pos = 5
    if value[1:5] == RAW_ID:
        _, pos = _long(value, pos)
    size, pos = _long(value, pos)
    return value[pos : pos + size].decode()


def kafka_floor(settings, count: int, rate: float) -> tuple[np.ndarray, int]:
    """A bare confluent-kafka producer -> topic -> consumer round trip at `rate`."""
    topic = f"bench-floor-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(topic, TRANSACTIONS_RAW.partitions, 1)]).values():
        future.result(30)
    floor = Arrivals(settings.kafka_bootstrap, topic, "read_uncommitted",
                     lambda m: m.key().decode())  # fmt: skip
    floor.start()
    time.sleep(3)
    sent = send(settings.kafka_bootstrap, topic, [(str(i), str(i), b"x" * 400)
                                                  for i in range(count)], rate)  # fmt: skip
    time.sleep(2)
    floor.stopping = True
    return percentiles(sent, floor.arrived, int(rate * 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 5000])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--checkpoint", default="1s")
    parser.add_argument("--parallelism", type=int, default=0, help="0: the job's own")
    parser.add_argument(
        "--warm-up",
        type=float,
        default=30,
        help="seconds of traffic at the measured rate each job gets before the measured phase",
    )
    parser.add_argument("--plot", help="write latency over time per rate to PLOT-<rate>.png")
    args = parser.parse_args()
    settings = Settings.from_env()
    stack = Stack(settings)
    started = [r.name for r in stack.up(["redis", "kafka", "flink"]) if r.action == "started"]
    try:
        world = build_world(11, n_users=5_000, n_merchants=2_000)
        lake = str(settings.home / "bench-lake")
        write_reference(LakeResource(root=lake), world, "sim11")
        today = epoch_day(datetime.now(UTC).date())
        needed = int(max(args.rates) * (args.seconds + args.warm_up))
        days = range(today - 1 - needed // 50_000, today)  # oldest first: per-user order
        records = [transaction_record(r) for day in days
                   for r in generate_day(world, day, 50_000).transactions.to_pylist()]  # fmt: skip
        table = Table("rate/s", "path", "P50 ms", "P95 ms", "P99 ms", "x Kafka (P50/P95/P99)",
                      "x PyFlink", "not arrived", title="raw -> enriched latency")  # fmt: skip
        for rate in args.rates:
            count, warm = int(rate * args.seconds), int(rate * args.warm_up)
            values = [(r["transaction_id"], r["user_id"], TRANSACTION.encode(r))
                      for r in records[: warm + count]]  # fmt: skip
            workload = (values[:warm], values[warm:])
            console.print(f"measuring at {rate:.0f}/s for {args.seconds:.0f} s "
                          f"after {args.warm_up:.0f} s of warm-up")  # fmt: skip
            platform = job_latency(settings, lake, workload, rate, args, ENRICHMENT)
            bare = job_latency(settings, lake, workload, rate, args, PASSTHROUGH)
            paths = {
                "enrichment, warm-up": platform["warm-up"],
                "bare PyFlink, warm-up": bare["warm-up"],
                "enrichment": platform["processing"],
                "enrichment, committed": platform["committed"],
                "bare PyFlink": bare["processing"],
                "bare PyFlink, committed": bare["committed"],
                "bare Kafka": kafka_floor(settings, count, rate),
            }
            floor, engine = paths["bare Kafka"][0], paths["bare PyFlink"][0]
            for path, (values_ms, missing) in paths.items():
                table.add_row(f"{rate:.0f}", path, *(f"{v:.1f}" for v in values_ms),
                              ratios(values_ms, floor), ratios(values_ms, engine),
                              str(missing))  # fmt: skip
            if args.plot:
                plot_timelines(f"{args.plot}-{rate:.0f}.png", rate, args.warm_up,
                               {"enrichment": platform["timeline"],
                                "bare PyFlink": bare["timeline"]})  # fmt: skip
            console.print(f"  sustained {platform['sustained']:.0f} transactions/s end to end "
                          f"(bare PyFlink {bare['sustained']:.0f}/s)")  # fmt: skip
        console.print(table)
    finally:
        if started:
            stack.down(started)


if __name__ == "__main__":
    main()
