"""The streaming jobs' pipelines.

enrichment (job 1): transactions-raw and fraud-labels -> transactions-enriched. Keyed by
  user, each transaction gets the catalog's row features, the user's windows strictly before
  it and the card's label features; then keyed by merchant, the merchant's windows (and those
  a label delay back) and label features, and the derived features; all computed on arrival
  (no waiting for a watermark). The fraud labels reach both keyed steps by the card and the
  merchant they name, and count once known before a transaction. The Kafka sink is
  exactly-once: a read-committed consumer sees each transaction once, at the checkpoint that
  commits it. Stateful operators carry fixed uids, so a savepoint still restores after the
  job's graph changes around them.
aggregates (job 2): transactions-raw -> Redis. Event time with a bounded-out-of-orderness
  watermark; events later than the watermark minus the allowed lateness go to the late
  topic (counted); the others update the user's 1h-30d windows (`user:{id}:agg:{window}`)
  and the merchant's (`merchant:{id}`), written as of the entity's latest event time, in
  pipelined batches, with TTLs by window. A write only replaces an older or equal
  `as_of_ms`, so replay after a failure rewrites the same values (idempotent).
Both keyed jobs also read fraud-erasures: a request (JSON: user_id, merchants, transaction_ids,
written by the platform's `gdpr erase`) clears the user's keyed state and drops the user's
transactions from each named merchant's; the platform then restarts the job from a canonical
savepoint, so its checkpoints let go of the bytes RocksDB still keeps (erasure_flink.py).
monitoring (job 3): transactions-enriched -> quality-stream-windows. One summary per
  event-time minute (volume, missing shares, the numeric features' distribution against
  their reference, lag, schema changes), emitted when the watermark passes the minute's end;
  the platform's Layer-2 suite validates each summary (sensors/streaming.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from fraud_kernel import mask_pans
from pyflink.common import Duration, Row, Time, Types, WatermarkStrategy
from pyflink.common.serialization import ByteArraySchema
from pyflink.datastream import (
    AggregateFunction,
    KeyedCoProcessFunction,
    KeyedProcessFunction,
    OutputTag,
    ProcessFunction,
    ProcessWindowFunction,
    RuntimeContext,
    StreamExecutionEnvironment,
)
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaSource,
)
from pyflink.datastream.data_stream import KeyedStream
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor
from pyflink.datastream.window import TumblingEventTimeWindows
from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment
from pyflink.table.expressions import col, to_timestamp_ltz

from fraud_streaming.features import (
    WRITE_IF_NEWER,
    Enricher,
    FraudBook,
    Histories,
    MerchantEnricher,
    OnlineWrites,
)
from fraud_streaming.monitoring import WindowStats
from fraud_streaming.records import Codec, EnrichedCodec, Reference

log = logging.getLogger("fraud_streaming")
BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())
RAW_ELEMENT = Types.ROW([Types.STRING(), BYTES, Types.INT(), Types.LONG(), Types.LONG()])
TIMED = Types.ROW_NAMED(["k", "v", "t"], [BYTES, BYTES, Types.LONG()])  # t: event time, ms
NOTHING = Types.ROW_NAMED(["n"], [Types.LONG()])


def side_output(name: str) -> OutputTag:
    """The tag of a side output ("late", "dead") of (key, value) rows, built where it is used:
    the job's code is pickled by value, and a shared tag would carry the Java handles its
    type gets once the pipeline has used it."""
    bytes_type = Types.PRIMITIVE_ARRAY(Types.BYTE())
    return OutputTag(name, Types.ROW_NAMED(["k", "v"], [bytes_type, bytes_type]))


def kafka_source(spec: dict, topic: str) -> KafkaSource:
    kafka = spec["kafka"]
    return (
        KafkaSource.builder()
        .set_bootstrap_servers(kafka["bootstrap"])
        .set_topics(topic)
        .set_group_id(spec["group"])
        .set_starting_offsets(
            KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.EARLIEST)
        )
        .set_value_only_deserializer(ByteArraySchema())
        .set_properties(
            {
                "isolation.level": "read_committed",
                "partition.discovery.interval.ms": "60000",
                # Small per-partition fetches: the reader alternates between partitions every
                # few hundred records on a backlog, so their watermarks advance together.
                "max.partition.fetch.bytes": str(64 * 1024),
            }
        )
        .build()
    )


def keyed_raw(t_env: StreamTableEnvironment, spec: dict) -> KeyedStream:
    """transactions-raw keyed by its record key (the user id) without a Python step: the
    Kafka table source reads key, value and position; the stream is keyed on the JVM the way
    PyFlink's own key_by keys the (key, value) rows its Python key selector makes. Each
    element is (key, value, partition, offset, timestamp in epoch ms: plain values, the same
    in the process and the thread execution mode); the keyed Python function is the job's
    only Python stage."""
    kafka = spec["kafka"]
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE raw_source (
          k STRING, v BYTES,
          `partition` INT METADATA VIRTUAL, `offset` BIGINT METADATA VIRTUAL,
          ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL
        ) WITH (
          'connector' = 'kafka',
          'topic' = '{spec["topics"]["raw"]}',
          'properties.bootstrap.servers' = '{kafka["bootstrap"]}',
          'properties.group.id' = '{spec["group"]}',
          'properties.isolation.level' = 'read_committed',
          'properties.auto.offset.reset' = 'earliest',
          'scan.startup.mode' = 'group-offsets',
          'scan.topic-partition-discovery.interval' = '60 s',
          'key.format' = 'raw', 'key.fields' = 'k',
          'value.format' = 'raw', 'value.fields-include' = 'EXCEPT_KEY'
        )""")
    epoch_ms = (
        "CAST(EXTRACT(EPOCH FROM ts) AS BIGINT) * 1000 + MOD(EXTRACT(MILLISECOND FROM ts), 1000)"
    )
    query = t_env.sql_query(
        f"SELECT COALESCE(k, '') AS `user`, ROW(COALESCE(k, ''), v, `partition`, `offset`, "
        f"{epoch_ms}) AS `record` FROM raw_source"
    )
    # A RowTypeInfo stream, as the keyed Python operator takes (to_data_stream's is not).
    rows = t_env.to_append_stream(query, Types.ROW([Types.STRING(), RAW_ELEMENT]))
    gateway = get_gateway()
    j_keyed = rows._j_data_stream.keyBy(
        gateway.jvm.KeyByKeySelector(), Types.ROW([Types.STRING()]).get_java_type_info()
    )
    return KeyedStream(j_keyed, RAW_ELEMENT, rows)


def kafka_sink_sql(spec: dict, table: str, topic: str, timed: bool = False) -> str:
    """A keyed Kafka sink table (raw key and value bytes), exactly-once; `timed` adds the
    record timestamp as a column."""
    kafka = spec["kafka"]
    timestamp = ", ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp'" if timed else ""
    return f"""
        CREATE TEMPORARY TABLE {table} (k BYTES, v BYTES{timestamp}) WITH (
          'connector' = 'kafka',
          'topic' = '{topic}',
          'properties.bootstrap.servers' = '{kafka["bootstrap"]}',
          'properties.transaction.timeout.ms' = '{kafka["transaction_timeout_ms"]}',
          'key.format' = 'raw', 'key.fields' = 'k',
          'value.format' = 'raw', 'value.fields-include' = 'EXCEPT_KEY',
          'sink.delivery-guarantee' = 'exactly-once',
          'sink.transactional-id-prefix' = '{spec["group"]}-{table}'
        )"""


def dead_letter(
    spec: dict, message: bytes, error: Exception, position: dict, topic: str = ""
) -> dict:
    """The dead-letter record of a message the job cannot read (position: key, partition,
    offset, timestamp of the original, -1 where the source does not expose it). Any card
    number in its bytes is masked by the platform's one definition (`fraud_kernel`)."""
    key = position.get("key")
    return {
        "original_key": key and mask_pans(key),
        "original_value": message and mask_pans(message),
        "reason": "stream_undecodable",
        "detail": f"{spec['name']}: {type(error).__name__}: {error}",
        "source_topic": topic or spec["topics"]["raw"],
        "source_partition": position.get("partition", -1),
        "source_offset": position.get("offset", -1),
        "source_timestamp": position.get("timestamp"),
        "rejected_at": int(time.time() * 1000),
        "transaction_id": None,
    }


class Decode(ProcessFunction):
    """Raw message -> processed row (with its message bytes). A message that does not decode
    goes to the dead-letter topic with the reason instead of failing the job: a bad record
    must not stop the stream, nor be dropped silently."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def open(self, runtime_context: RuntimeContext) -> None:
        self.codec = Codec(self.spec["contracts"]["transaction"])
        self.dead_letters = Codec(self.spec["contracts"]["dead_letter"])
        self.reference = Reference(self.spec["reference"])
        self.dead = runtime_context.get_metrics_group().counter("dead_letters")
        self.dead_output = side_output("dead")

    def process_element(self, value: bytes, ctx: ProcessFunction.Context):
        message = bytes(value)
        try:
            row = self.reference.processed(self.codec.decode(message))
        except Exception as error:
            self.dead.inc()
            # The value-only Kafka source does not expose the position: -1 says so.
            letter = dead_letter(self.spec, message, error, {"timestamp": ctx.timestamp()})
            yield self.dead_output, Row(None, self.dead_letters.encode(letter))
            return
        row["_message"] = message
        yield row


def history_state(runtime_context: RuntimeContext, name: str):
    """An entity's events as keyed list state."""
    return runtime_context.get_list_state(ListStateDescriptor(name, Types.PICKLED_BYTE_ARRAY()))


def fraud_book(runtime_context: RuntimeContext, spec: dict) -> FraudBook:
    """An entity's known frauds as keyed value state, behind a cache."""
    state = runtime_context.get_state(ValueStateDescriptor("frauds", Types.PICKLED_BYTE_ARRAY()))
    return FraudBook(state, spec["state_cache_keys"])


class DecodeLabel(ProcessFunction):
    """fraud-labels -> the fraud verdicts the label features count, with the card and the
    merchant they name. A genuine verdict counts nothing; a label naming neither (a producer
    on the label contract's first version) is counted as unattributed, as the lake still
    keeps it; one that does not decode becomes a dead letter."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def open(self, runtime_context: RuntimeContext) -> None:
        self.codec = Codec(self.spec["contracts"]["label"])
        self.dead_letters = Codec(self.spec["contracts"]["dead_letter"])
        metrics = runtime_context.get_metrics_group()
        self.frauds, self.unattributed = (
            metrics.counter("fraud_labels"),
            metrics.counter("unattributed_labels"),
        )
        self.dead = metrics.counter("dead_letters")
        self.dead_output = side_output("dead")

    def process_element(self, value: bytes, ctx: ProcessFunction.Context):
        message = bytes(value)
        try:
            label = self.codec.decode(message)
        except Exception as error:
            self.dead.inc()
            position = {"timestamp": ctx.timestamp()}
            letter = dead_letter(self.spec, message, error, position, self.spec["topics"]["labels"])
            yield self.dead_output, Row(None, self.dead_letters.encode(letter))
            return
        if not label["is_fraud"]:
            return
        if not label.get("user_id") or not label.get("merchant_id"):
            self.unattributed.inc()
            return
        self.frauds.inc()
        yield {
            "transaction_id": label["transaction_id"],
            "tx_ms": label["transaction_time"],
            "complete_ms": label["investigation_complete_time"],
            "user_id": label["user_id"],
            "merchant_id": label["merchant_id"],
        }


# What the merchant's step needs of a transaction's row.
PASSED = ("transaction_id", "user_id", "merchant_id", "ts_ms", "device_id", "device_changed")


def learn(book: FraudBook, key: str, label: dict) -> None:
    frauds = book.get(key)
    frauds.add(label["tx_ms"], label["complete_ms"], label["transaction_id"])
    book.put(key, frauds)


class DecodeErasure(ProcessFunction):
    """fraud-erasures -> what each keyed step forgets: one element for the user's own state,
    one per merchant the user bought from (the user's transactions in its state). A request
    that does not decode becomes a dead letter."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def open(self, runtime_context: RuntimeContext) -> None:
        self.dead_letters = Codec(self.spec["contracts"]["dead_letter"])
        metrics = runtime_context.get_metrics_group()
        self.erasures, self.dead = metrics.counter("erasures"), metrics.counter("dead_letters")
        self.dead_output = side_output("dead")

    def process_element(self, value: bytes, ctx: ProcessFunction.Context):
        message = bytes(value)
        try:
            request = json.loads(message)
            user_id, ids = str(request["user_id"]), list(request["transaction_ids"])
            merchants = [str(m) for m in request["merchants"]]
            if not user_id:
                raise ValueError("the request names no user_id")
        except Exception as error:
            self.dead.inc()
            topic = self.spec["topics"]["erasures"]
            letter = dead_letter(self.spec, message, error, {"timestamp": ctx.timestamp()}, topic)
            yield self.dead_output, Row(None, self.dead_letters.encode(letter))
            return
        self.erasures.inc()
        erasure = {"erase": user_id, "transaction_ids": ids}
        yield {**erasure, "user_id": user_id, "merchant_id": None}
        for merchant in merchants:
            yield {**erasure, "user_id": None, "merchant_id": merchant}


def erasure_requests(
    env: StreamExecutionEnvironment, spec: dict, watermarks: WatermarkStrategy | None = None
):
    """The decoded requests. In an event-time job (`watermarks`: one that goes idle) a
    quiet erasure topic must not hold back the watermark of the steps it joins."""
    source = kafka_source(spec, spec["topics"]["erasures"])
    strategy = watermarks or WatermarkStrategy.no_watermarks()
    requests = env.from_source(source, strategy, "fraud-erasures")
    decoded = requests.uid("erasures-source").process(
        DecodeErasure(spec), output_type=Types.PICKLED_BYTE_ARRAY()
    )
    return decoded.name("decode-erasures").uid("decode-erasures")


def erasures_of(erasures, key: str):
    """The erasure elements a step keyed by `key` (user_id, merchant_id) acts on."""
    return erasures.filter(lambda erasure, key=key: erasure[key] is not None)


def forget_transactions(histories: Histories, book: FraudBook | None, erasure: dict) -> None:
    """A merchant's history and frauds without the erased user's transactions (and any
    event whose values name the user)."""
    key, ids = erasure["merchant_id"], set(erasure["transaction_ids"])
    history = histories.get(key)
    if history.without(ids, erasure["erase"]):
        histories.put(key, history)
    if book is not None:
        frauds = book.get(key)
        if frauds.without(ids):
            book.put(key, frauds)


class Enrich(KeyedCoProcessFunction):
    """Job 1's first step, keyed by user: decode the raw message, join the reference tables,
    compute the user's side of the features from its history and frauds in state, and pass
    the transaction on to the merchant's step. Its second input, the card's fraud labels,
    only updates state. A message that does not decode becomes a dead letter."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def open(self, runtime_context: RuntimeContext) -> None:
        self.codec = Codec(self.spec["contracts"]["transaction"])
        self.dead_letters = Codec(self.spec["contracts"]["dead_letter"])
        self.reference = Reference(self.spec["reference"])
        self.enricher = Enricher(self.spec["features"])
        self.histories = Histories(
            history_state(runtime_context, "events"),
            self.spec["state_cache_keys"],
            self.enricher.keep_ms,
        )
        self.frauds = fraud_book(runtime_context, self.spec)
        self.dead = runtime_context.get_metrics_group().counter("dead_letters")
        self.dead_output = side_output("dead")

    def process_element1(self, element: Row, ctx: KeyedCoProcessFunction.Context):
        key, message, partition, offset, timestamp = element
        try:
            row = self.reference.processed(self.codec.decode(message))
        except Exception as error:
            self.dead.inc()
            position = {"key": key.encode() or None, "partition": partition, "offset": offset,
                        "timestamp": timestamp}  # fmt: skip
            letter = dead_letter(self.spec, message, error, position)
            yield self.dead_output, Row(None, self.dead_letters.encode(letter))
            return
        history, frauds = self.histories.get(key), self.frauds.get(key)
        features = self.enricher.enrich(history, frauds, row)
        self.histories.put(key, history)
        self.frauds.put(key, frauds)
        yield {name: row.get(name) for name in PASSED}, features

    def process_element2(self, label: dict, ctx: KeyedCoProcessFunction.Context):
        if label.get("erase"):
            self.histories.forget(label["user_id"])
            self.frauds.forget(label["user_id"])
        else:
            learn(self.frauds, label["user_id"], label)
        return iter(())


class EnrichMerchant(KeyedCoProcessFunction):
    """Job 1's second step, keyed by merchant: the merchant's side of the features from its
    history and frauds in state, and the enriched message. Its second input, the merchant's
    fraud labels, only updates state."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def open(self, runtime_context: RuntimeContext) -> None:
        self.enriched = EnrichedCodec(self.spec["contracts"]["enriched"])
        self.enricher = MerchantEnricher(self.spec["features"])
        self.histories = Histories(
            history_state(runtime_context, "merchant_events"),
            self.spec["state_cache_keys"],
            self.enricher.keep_ms,
        )
        self.frauds = fraud_book(runtime_context, self.spec)

    def process_element1(self, element: tuple, ctx: KeyedCoProcessFunction.Context):
        row, features = element
        key = row["merchant_id"]
        history, frauds = self.histories.get(key), self.frauds.get(key)
        features.update(self.enricher.enrich(history, frauds, row, features))
        self.histories.put(key, history)
        self.frauds.put(key, frauds)
        enriched = {
            "transaction_id": row["transaction_id"],
            "user_id": row["user_id"],
            "merchant_id": row["merchant_id"],
            "timestamp": row["ts_ms"],
            "features": features,
            "feature_version": self.spec["feature_version"],
        }
        yield Row(row["user_id"].encode(), self.enriched.encode(enriched), row["ts_ms"])

    def process_element2(self, label: dict, ctx: KeyedCoProcessFunction.Context):
        if label.get("erase"):
            forget_transactions(self.histories, self.frauds, label)
        else:
            learn(self.frauds, label["merchant_id"], label)
        return iter(())


def decoded_stream(env: StreamExecutionEnvironment, spec: dict, watermarks: WatermarkStrategy):
    """The raw topic's transactions as processed rows. Event time is the record timestamp
    (the validator sets it to the transaction's time), so watermarks are generated in the
    source, per partition: one reader fetching partitions in turns does not make the slower
    partitions' events look late."""
    source = kafka_source(spec, spec["topics"]["raw"])
    raw = env.from_source(source, watermarks, "transactions-raw").uid("raw-source")
    return raw.process(Decode(spec), output_type=Types.PICKLED_BYTE_ARRAY()).name("decode")


def timed_rows(t_env: StreamTableEnvironment, stream):
    """A (k, v, t) stream as the rows of a timed sink: t (epoch ms) becomes the timestamp."""
    table = t_env.from_data_stream(stream)
    return table.select(col("k"), col("v"), to_timestamp_ltz(col("t"), 3))


def statements_with_dead_letters(t_env: StreamTableEnvironment, spec: dict, *decoders):
    """A statement set that already writes the dead letters of the decoding steps."""
    t_env.execute_sql(kafka_sink_sql(spec, "dead_sink", spec["topics"]["dead_letters"]))
    statements = t_env.create_statement_set()
    dead = [step.get_side_output(side_output("dead")) for step in decoders]
    statements.add_insert("dead_sink", t_env.from_data_stream(dead[0].union(*dead[1:])))
    return statements


def fraud_labels(env: StreamExecutionEnvironment, spec: dict):
    """fraud-labels' fraud verdicts, decoded (no event time: a label counts once known)."""
    source = kafka_source(spec, spec["topics"]["labels"])
    labels = env.from_source(source, WatermarkStrategy.no_watermarks(), "fraud-labels")
    decoded = labels.uid("labels-source").process(
        DecodeLabel(spec), output_type=Types.PICKLED_BYTE_ARRAY()
    )
    return decoded.name("decode-labels").uid("decode-labels")


def enrichment(env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, spec: dict):
    labels, erasures = fraud_labels(env, spec), erasure_requests(env, spec)
    by_user = labels.union(erasures_of(erasures, "user_id")).key_by(
        lambda label: label["user_id"], key_type=Types.STRING()
    )
    by_merchant = labels.union(erasures_of(erasures, "merchant_id")).key_by(
        lambda label: label["merchant_id"], key_type=Types.STRING()
    )
    users = (
        keyed_raw(t_env, spec)
        .connect(by_user)
        .process(Enrich(spec), output_type=Types.PICKLED_BYTE_ARRAY())
        .name("enrich")
        .uid("enrich")
    )
    enriched = (
        users.key_by(lambda passed: passed[0]["merchant_id"], key_type=Types.STRING())
        .connect(by_merchant)
        .process(EnrichMerchant(spec), output_type=TIMED)
        .name("enrich-merchant")
        .uid("enrich-merchant")
    )
    # The enriched record keeps the transaction's event time, as raw does (job 3 windows by it).
    t_env.execute_sql(kafka_sink_sql(spec, "enriched_sink", spec["topics"]["enriched"], True))
    statements = statements_with_dead_letters(t_env, spec, users, labels, erasures)
    statements.add_insert("enriched_sink", timed_rows(t_env, enriched))
    return statements


class Lateness(ProcessFunction):
    """Events older than the watermark minus the allowed lateness leave for the late topic."""

    def __init__(self, lateness_ms: int) -> None:
        self.lateness_ms = lateness_ms

    def open(self, runtime_context: RuntimeContext) -> None:
        metrics = runtime_context.get_metrics_group()
        self.late = metrics.counter("late_events")
        self.on_time = metrics.counter("on_time_events")
        self.late_output = side_output("late")

    def process_element(self, row: dict, ctx: ProcessFunction.Context):
        watermark = ctx.timer_service().current_watermark()
        if ctx.timestamp() < watermark - self.lateness_ms:
            self.late.inc()
            yield self.late_output, Row(row["user_id"].encode(), row["_message"])
        else:
            self.on_time.inc()
            yield row


class Aggregate(KeyedProcessFunction):
    """Job 2's keyed step for one entity kind: its windows as of its latest event, written to
    Redis in pipelined batches, flushed when `batch` writes wait or every `flush_ms`.

    The periodic flush runs on a thread of the Python worker rather than on a Flink timer: a
    timer firing while a failed task is torn down reached RocksDB after it closed and took
    the task manager down. Writes lost with a crash are recomputed on replay (idempotent).
    """

    def __init__(self, spec: dict, entity: str) -> None:
        self.spec, self.entity = spec, entity

    def open(self, runtime_context: RuntimeContext) -> None:
        import redis

        self.online = OnlineWrites(self.spec, self.entity)
        self.windows = self.online.windows
        self.histories = Histories(
            history_state(runtime_context, f"{self.entity}_events"),
            self.spec["state_cache_keys"],
            self.windows.horizon_ms,
        )
        self.client = redis.Redis.from_url(self.spec["redis"]["url"])
        self.script = self.client.register_script(WRITE_IF_NEWER)
        self.pending: list[tuple[str, list]] = []
        self.lock = threading.Lock()
        self.batch = self.spec["redis"]["batch"]
        self.writes = runtime_context.get_metrics_group().counter("redis_writes")
        self.stopping = threading.Event()
        self.flusher = threading.Thread(target=self._flush_periodically, daemon=True)
        self.flusher.start()

    def process_element(self, row: dict, ctx: KeyedProcessFunction.Context):
        key = ctx.get_current_key()
        if row.get("erase"):
            self._forget(key, row)
            return iter(())
        history = self.histories.get(key)
        history.record(row, self.windows, self.windows.horizon_ms)
        self.histories.put(key, history)
        writes = self.online(key, history)
        self.writes.inc(len(writes))  # metrics are the operator thread's, not the flusher's
        with self.lock:
            self.pending.extend(writes)
            if len(self.pending) >= self.batch:
                self._flush()
        return iter(())

    def _forget(self, key: str, erasure: dict) -> None:
        """An erasure: a user's history and its unwritten Redis writes go (Redis itself is
        erased by the platform after the jobs); a merchant's history loses the user's
        transactions."""
        if self.entity != "user":
            forget_transactions(self.histories, None, erasure)
            return
        self.histories.forget(key)
        own = self.spec["keys"]["user_window"].format(key, "")
        with self.lock:
            self.pending = [(k, args) for k, args in self.pending if not k.startswith(own)]

    def _flush(self) -> None:
        if not self.pending:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, args in self.pending:
            self.script(keys=[key], args=args, client=pipe)
        pipe.execute()
        self.pending = []

    def _flush_periodically(self) -> None:
        while not self.stopping.wait(self.spec["redis"]["flush_ms"] / 1000):
            try:
                with self.lock:
                    self._flush()
            except Exception:  # Redis away: keep the writes, try again next round
                log.exception("Redis flush failed; retrying")

    def close(self) -> None:
        if hasattr(self, "flusher"):
            self.stopping.set()
            self.flusher.join(timeout=5)
            with self.lock:
                self._flush()
            self.client.close()


def event_time_watermarks(spec: dict) -> WatermarkStrategy:
    event_time = spec["event_time"]
    return WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(event_time["watermark_ms"])
    ).with_idleness(Duration.of_millis(event_time["idleness_ms"]))


def aggregates(env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, spec: dict):
    event_time = spec["event_time"]
    rows = decoded_stream(env, spec, event_time_watermarks(spec))
    on_time = rows.process(
        Lateness(event_time["lateness_ms"]), output_type=Types.PICKLED_BYTE_ARRAY()
    ).name("lateness")
    erasures = erasure_requests(env, spec, event_time_watermarks(spec))
    writers = [
        on_time.union(erasures_of(erasures, key))
        .key_by(lambda row, key=key: row[key], key_type=Types.STRING())
        .process(Aggregate(spec, entity), output_type=NOTHING)
        .name(f"{entity}-windows")
        .uid(f"{entity}-windows")
        for entity, key in (("user", "user_id"), ("merchant", "merchant_id"))
    ]
    t_env.execute_sql(kafka_sink_sql(spec, "late_sink", spec["topics"]["late"]))
    # The Redis writers emit nothing; a blackhole sink keeps the planner from pruning them.
    t_env.execute_sql("CREATE TEMPORARY TABLE written (n BIGINT) WITH ('connector' = 'blackhole')")
    statements = statements_with_dead_letters(t_env, spec, rows, erasures)
    late = on_time.get_side_output(side_output("late"))
    statements.add_insert("late_sink", t_env.from_data_stream(late))
    statements.add_insert("written", t_env.from_data_stream(writers[0].union(writers[1])))
    return statements


class Measure(AggregateFunction):
    """Job 3's incremental step: each enriched message into its window's accumulator."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self._stats: WindowStats | None = None

    @property
    def stats(self) -> WindowStats:
        """Built on the worker: the window operator never opens this function. (Not a
        cached_property: its lock would not pickle with the job's code.)"""
        if self._stats is None:
            self._stats = WindowStats(self.spec)
        return self._stats

    def create_accumulator(self) -> dict:
        return self.stats.empty()

    def add(self, value: bytes, accumulator: dict) -> dict:
        return self.stats.add(accumulator, bytes(value))

    def get_result(self, accumulator: dict) -> dict:
        return accumulator

    def merge(self, a: dict, b: dict) -> dict:
        return WindowStats.merge(a, b)


class Summarize(ProcessWindowFunction):
    """The closed window's summary, as JSON keyed by the window's start."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def open(self, runtime_context: RuntimeContext) -> None:
        self.stats = WindowStats(self.spec)
        metrics = runtime_context.get_metrics_group()
        self.windows = metrics.counter("windows")
        self.schema_changes = metrics.counter("schema_changes")
        self.undecodable = metrics.counter("undecodable")

    def process(self, key, context: ProcessWindowFunction.Context, elements):
        window = context.window()
        summary = self.stats.summary(next(iter(elements)), window.start, window.end)
        self.windows.inc()
        self.schema_changes.inc(summary["schema_changes"])
        self.undecodable.inc(summary["undecodable"])
        yield Row(str(window.start).encode(), json.dumps(summary).encode(), window.end - 1)


def monitoring(env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, spec: dict):
    source = kafka_source(spec, spec["topics"]["enriched"])
    messages = env.from_source(source, event_time_watermarks(spec), "transactions-enriched").uid(
        "enriched-source"
    )
    window = Time.milliseconds(spec["monitoring"]["window_ms"])
    summaries = (
        messages.key_by(lambda _: 0, key_type=Types.INT())  # one stream-wide window
        .window(TumblingEventTimeWindows.of(window))
        .aggregate(
            Measure(spec),
            Summarize(spec),
            accumulator_type=Types.PICKLED_BYTE_ARRAY(),
            output_type=TIMED,
        )
        .name("measure")
        .uid("measure")
    )
    t_env.execute_sql(kafka_sink_sql(spec, "windows_sink", spec["topics"]["windows"], True))
    statements = t_env.create_statement_set()
    statements.add_insert("windows_sink", timed_rows(t_env, summaries))
    return statements


class Forward(KeyedProcessFunction):
    """The passthrough's Python step: the message as it came."""

    def process_element(self, element: Row, ctx: KeyedProcessFunction.Context):
        key, message, _, _, timestamp = element
        yield Row(key.encode(), message, timestamp)


def passthrough(env: StreamExecutionEnvironment, t_env: StreamTableEnvironment, spec: dict):
    """The bare engine the enrichment job is benchmarked against: its source, keying and
    exactly-once sink around a Python step that does nothing."""
    forwarded = keyed_raw(t_env, spec).process(Forward(), output_type=TIMED).name("forward")
    t_env.execute_sql(kafka_sink_sql(spec, "enriched_sink", spec["topics"]["enriched"], True))
    statements = t_env.create_statement_set()
    statements.add_insert("enriched_sink", timed_rows(t_env, forwarded))
    return statements


PIPELINES = {
    "enrichment": enrichment,
    "aggregates": aggregates,
    "monitoring": monitoring,
    "passthrough": passthrough,
}
