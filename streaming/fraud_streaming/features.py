"""The compiled feature catalog at run time: expressions over a row, and windows over an
entity's history (kept in keyed state behind a cache, `Histories`).

Both jobs keep each entity's recent events sorted by (event time, transaction id). The
enrichment asks for the windows strictly before a transaction, [t - w, t - 1] in epoch ms
(the batch SQL's `RANGE BETWEEN w PRECEDING AND 1 PRECEDING`); the aggregates job asks for
the windows as of its latest event, [T - w + 1, T], which is what the online store serves.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

Row = dict[str, Any]


def _nullif(value: Any, other: Any) -> Any:
    return None if value == other else value


_CASTS: dict[str, Callable[[Any], Any]] = {"DOUBLE": float, "BIGINT": int, "STRING": str}
_SQL_NULL = (TypeError, ZeroDivisionError, ValueError, OverflowError)


def compile_expression(source: str) -> Callable[[Row], Any]:
    """A function of a row evaluating a translated catalog expression with SQL's nulls."""
    function = eval(f"lambda r: {source}", {"math": math, "_nullif": _nullif})

    def evaluate(row: Row) -> Any:
        try:
            return function(row)
        except _SQL_NULL:
            return None

    return evaluate


def cast(value: Any, dtype: str) -> Any:
    return None if value is None else _CASTS[dtype](value)


class RowFeatures:
    """The row-level features (and the derived ones) of a processed transaction."""

    def __init__(self, features: Sequence[dict]) -> None:
        self._features = [
            (f["name"], f["dtype"], compile_expression(f["python"])) for f in features
        ]

    def __call__(self, row: Row) -> dict[str, Any]:
        return {name: cast(fn(row), dtype) for name, dtype, fn in self._features}


def _average(values: Sequence[Any]) -> Any:
    return math.fsum(values) / len(values) if values else None


def _maximum(values: Sequence[Any]) -> Any:
    return max(values) if values else None


def _stddev_pop(values: Sequence[Any]) -> Any:
    if not values:
        return None
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


# Each aggregate over a window's non-null values, as the batch SQL computes it (SUM is
# COALESCE(SUM, 0) there).
AGGREGATES: dict[str, Callable[[Sequence[Any]], Any]] = {
    "COUNT": len,
    "SUM": sum,
    "COUNT_DISTINCT": lambda values: len(set(values)),
    "AVG": _average,
    "MAX": _maximum,
    "STDDEV_POP": _stddev_pop,
}


# The catalog's device_changed column as a window value expression (its translation).
DEVICE_CHANGED = "r['device_changed']"


class Windows:
    """A set of window features over one entity's events.

    Each event is stored once with the value of every distinct value expression. All the
    windows of one call end at the same instant, so each is a suffix of the longest: that one
    is transposed into columns once, and each feature is an aggregate over the tail of one
    column. This is the hot loop of both jobs.

    A feature with a `match` expression (a user-at-merchant pair window) aggregates only the
    events whose match value equals the transaction's, as the batch partitions by both keys.
    """

    def __init__(self, features: Sequence[dict], layout: Sequence[dict] = ()) -> None:
        """`layout`: every feature whose values the history stores (these and others over
        the same history, e.g. the merchant's windows and its delayed ones); `features` by
        default."""
        self.features = list(features)
        for feature in self.features:
            if feature["aggregate"] not in AGGREGATES:
                raise ValueError(f"{feature['name']}: unknown aggregate {feature['aggregate']!r}")
        stored = list(layout) or self.features
        matches = sorted({f["match"] for f in stored if "match" in f})
        values = sorted({f["value"] for f in stored} | set(matches))
        self.value_index = {source: i for i, source in enumerate(values)}
        self._device_column = self.value_index.get(DEVICE_CHANGED)
        self._values = [compile_expression(source) for source in values]
        self._matches = [(self.value_index[m], compile_expression(m)) for m in matches]
        self.horizon_ms = max((f["window_ms"] for f in self.features), default=0)
        plan: dict[int, list[tuple[str, Callable, int, int | None]]] = {}
        for f in self.features:
            match = self.value_index[f["match"]] if "match" in f else None
            plan.setdefault(f["window_ms"], []).append(
                (f["name"], AGGREGATES[f["aggregate"]], self.value_index[f["value"]], match)
            )
        self._plan = list(plan.items())

    def values(self, row: Row) -> tuple:
        return tuple(fn(row) for fn in self._values)

    def with_device_changed(self, values: tuple, flag: int) -> tuple:
        """An event's values with its device_changed corrected (see History.record)."""
        column = self._device_column
        return values if column is None else (*values[:column], flag, *values[column + 1 :])

    def compute(
        self, history: History, low_of: Callable[[int], int], high: int, row: Row | None = None
    ) -> dict:
        """Each feature over the history's events with low_of(window_ms) <= ts <= high (and,
        for a matched feature, the match value of `row`)."""
        starts = {window: history.index(low_of(window)) for window, _ in self._plan}
        first, end = min(starts.values(), default=0), history.index(high + 1)
        columns = list(zip(*(event[-1] for event in history.events[first:end]), strict=True))
        if not columns:
            columns = [()] * len(self._values)
        wanted = {column: fn(row) for column, fn in self._matches} if row is not None else {}
        result = {}
        for window, features in self._plan:
            tail = starts[window] - first
            present: dict[int, Sequence[Any]] = {}
            for name, aggregate, column, match in features:
                if match is not None:
                    pairs = zip(columns[match][tail:], columns[column][tail:], strict=True)
                    matching = [v for k, v in pairs if k == wanted[match] and v is not None]
                    result[name] = aggregate(matching)
                    continue
                values = present.get(column)
                if values is None:
                    values = columns[column][tail:]
                    if None in values:
                        values = [v for v in values if v is not None]
                    present[column] = values
                result[name] = aggregate(values)
        return result

    def before(self, history: History, ts_ms: int, row: Row | None = None) -> dict:
        """Windows strictly before a transaction at ts_ms (the batch's point-in-time rule)."""
        return self.compute(history, lambda w: ts_ms - w, ts_ms - 1, row)

    def as_of(self, history: History, ts_ms: int) -> dict:
        """Windows ending at ts_ms inclusive: what the online store holds at that instant."""
        return self.compute(history, lambda w: ts_ms - w + 1, ts_ms)


class History:
    """An entity's events, sorted by (ts_ms, transaction_id): (ts_ms, id, device_id,
    device_changed, values). Plain tuples, so Flink state pickles them cheaply.

    It also notes what its stored copy lacks: the events appended in order since it was
    last saved (`unsaved`), or that it changed otherwise (`rewrite`: an event inserted
    before later ones). Writing the whole history on every event was most of the
    enrichment's time; appending one event costs the same at any history length."""

    def __init__(self, events: list[tuple] | None = None) -> None:
        self.events = events or []
        self._times = [e[0] for e in self.events]
        self.stored = len(self.events)  # events the stored copy holds, pruned ones included
        self.unsaved: list[tuple] = []
        self.rewrite = False

    def index(self, ts_ms: int) -> int:
        """The position of the first event at or after ts_ms."""
        return bisect_left(self._times, ts_ms)

    def add(self, event: tuple) -> int:
        """Insert in (time, id) order; returns the event's position."""
        if not self.events or (event[0], event[1]) >= (self.events[-1][0], self.events[-1][1]):
            self.events.append(event)  # the usual case: events of an entity arrive in order
            self._times.append(event[0])
            self.unsaved.append(event)
            return len(self.events) - 1
        self.rewrite = True
        position = bisect_right(self.events, (event[0], event[1]), key=lambda e: (e[0], e[1]))
        self.events.insert(position, event)
        self._times.insert(position, event[0])
        return position

    def prune(self, before_ms: int) -> None:
        cut = bisect_left(self._times, before_ms)
        if cut:
            del self.events[:cut], self._times[:cut]

    def record(self, row: Row, windows: Windows, keep_ms: int) -> None:
        """Add a processed row with the values `windows` aggregate, setting its
        device_changed from this history when not set yet, and forget what is older than
        `keep_ms` before the newest event."""
        if "device_changed" not in row:
            _, previous_device = self.previous(row["ts_ms"])
            row["device_changed"] = device_changed(previous_device, row.get("device_id"))
        event = (
            row["ts_ms"], row["transaction_id"], row.get("device_id"),
            row["device_changed"], windows.values(row),
        )  # fmt: skip
        position = self.add(event)
        if event[2] is not None and position < len(self.events) - 1:
            self._reflag_after(position, windows)
        self.prune(self._times[-1] - keep_ms)

    def _reflag_after(self, position: int, windows: Windows) -> None:
        """An event with a device arrived after later ones (late, or a replay out of order):
        it is now the previous device of the next later events, whose device_changed was set
        without it. Recomputed up to the millisecond of the first later-time event with a
        device: later events have that one (or a later one) as their previous device."""
        inserted_ms, last_ms = self.events[position][0], None
        for index in range(position + 1, len(self.events)):
            ts_ms, transaction_id, device, flag, values = self.events[index]
            if last_ms is not None and ts_ms > last_ms:
                return
            if device is None:
                continue
            fresh = device_changed(self.previous(ts_ms)[1], device)
            if fresh != flag:
                values = windows.with_device_changed(values, fresh)
                self.events[index] = (ts_ms, transaction_id, device, fresh, values)
            if last_ms is None and ts_ms > inserted_ms:
                last_ms = ts_ms

    def without(self, transaction_ids: set[str], user_id: str | None = None) -> int:
        """Drop the events of these transactions, and any whose values name `user_id` (an
        erased user's, from a merchant's history: a transaction the request's list missed
        still names its user in the user-keyed values); returns how many went. The stored
        copy is rewritten on the next put."""
        named = (lambda values: user_id in values) if user_id else (lambda values: False)
        kept = [e for e in self.events if e[1] not in transaction_ids and not named(e[4])]
        dropped = len(self.events) - len(kept)
        if dropped:
            self.events, self._times, self.rewrite = kept, [e[0] for e in kept], True
            self.unsaved = []
        return dropped

    def latest_ms(self) -> int | None:
        return self._times[-1] if self._times else None

    def previous(self, ts_ms: int) -> tuple[int | None, str | None]:
        """(time of the latest earlier event, device of the latest earlier event that had
        one): the batch's prev_ts_ms and prev_device_id. Earlier means a smaller ts_ms; among
        earlier events of one millisecond the larger transaction id is the later, as in the
        batch SQL."""
        earlier = bisect_left(self._times, ts_ms)
        prev_ts = self._times[earlier - 1] if earlier else None
        device = next((e[2] for e in reversed(self.events[:earlier]) if e[2] is not None), None)
        return prev_ts, device


class Histories:
    """Entity histories in keyed list state, read through a bounded in-memory cache.

    Each state read crosses to the JVM and unpickles the history: a blocking round trip
    from the worker in process mode (it was 40% of the enrichment step's time), a JNI call
    into RocksDB in thread mode. The cache lives as long as the operator (it is built in
    `open`, which runs again after a restore), and during that life this function is the
    only writer of its keys' state, so a cached history is the state's value.

    Every event still reaches the state, so checkpoints hold it: an event appended in order
    is added to the list; anything else rewrites it. Events pruned from memory stay in the
    stored list until it holds twice the history (plus `slack`), then it is rewritten; a
    history read back is pruned as the cached one was (the cut only moves forward).
    """

    def __init__(self, state, capacity: int, keep_ms: int, slack: int = 16) -> None:
        self.state, self.capacity, self.keep_ms, self.slack = state, capacity, keep_ms, slack
        self.cache: OrderedDict[str, History] = OrderedDict()

    def get(self, key: str) -> History:
        history = self.cache.get(key)
        if history is None:
            history = History(list(self.state.get() or ()))
            if history.events:
                history.prune(history.latest_ms() - self.keep_ms)
        else:
            self.cache.move_to_end(key)
        return history

    def forget(self, key: str) -> None:
        """The current key's history gone from the cache and the state (an erasure)."""
        self.cache.pop(key, None)
        self.state.clear()

    def put(self, key: str, history: History) -> None:
        if history.rewrite or history.stored > 2 * len(history.events) + self.slack:
            # A copy: a state that kept this very list would see later appends twice.
            self.state.update(list(history.events))
            history.stored = len(history.events)
        elif history.unsaved:
            self.state.add_all(history.unsaved)
            history.stored += len(history.unsaved)
        history.unsaved, history.rewrite = [], False
        self.cache[key] = history
        if len(self.cache) > self.capacity:
            self.cache.popitem(last=False)


def device_changed(previous_device: str | None, device_id: str | None) -> int:
    return int(
        previous_device is not None and device_id is not None and device_id != previous_device
    )


class Frauds:
    """An entity's known frauds as (transaction time, label completion, transaction id),
    sorted by transaction time: each transaction once, at its earliest fraud verdict (the
    batch's MIN(complete_ms) per transaction). Plain tuples, so state pickles them cheaply."""

    def __init__(self, entries: Sequence[tuple] = ()) -> None:
        self.entries = sorted(entries)
        self.changed = False

    def add(self, tx_ms: int, complete_ms: int, transaction_id: str) -> None:
        for i, (_, known_ms, other) in enumerate(self.entries):
            if other == transaction_id:
                if complete_ms < known_ms:
                    self.entries[i] = (tx_ms, complete_ms, transaction_id)
                    self.changed = True
                return
        self.entries.insert(
            bisect_right(self.entries, (tx_ms,)), (tx_ms, complete_ms, transaction_id)
        )
        self.changed = True

    def prune(self, before_ms: int) -> None:
        cut = bisect_left(self.entries, (before_ms,))
        if cut:
            del self.entries[:cut]
            self.changed = True

    def without(self, transaction_ids: set[str]) -> int:
        """Drop the frauds of these transactions (an erased user's); returns how many."""
        kept = [e for e in self.entries if e[2] not in transaction_ids]
        dropped = len(self.entries) - len(kept)
        if dropped:
            self.entries, self.changed = kept, True
        return dropped

    def known(self, low: int, high: int, before_ms: int) -> list[int]:
        """Transaction times in [low, high] of the frauds known before `before_ms`."""
        start, end = bisect_left(self.entries, (low,)), bisect_left(self.entries, (high + 1,))
        return [tx for tx, known_ms, _ in self.entries[start:end] if known_ms < before_ms]


class LabelFeatures:
    """The catalog's label features of an entity: its frauds among its transactions of the
    window ending the label delay before the transaction, [t - delay - w, t - delay - 1],
    known (label completed) strictly before it: their COUNT, or the seconds since the FIRST
    or LAST of them."""

    def __init__(self, features: Sequence[dict], delay_ms: int) -> None:
        self.features, self.delay_ms = list(features), delay_ms
        self.horizon_ms = delay_ms + max((f["window_ms"] for f in self.features), default=0)

    def __call__(self, frauds: Frauds, ts_ms: int) -> dict[str, Any]:
        """The features of a transaction at ts_ms; frauds too old for any later transaction's
        window are forgotten (late transactions get a day's margin)."""
        frauds.prune(ts_ms - self.horizon_ms - 86_400_000)
        end = ts_ms - self.delay_ms - 1
        result = {}
        for f in self.features:
            times = frauds.known(ts_ms - self.delay_ms - f["window_ms"], end, ts_ms)
            if f["aggregate"] == "COUNT":
                result[f["name"]] = len(times)
            elif not times:
                result[f["name"]] = None
            else:
                extreme = times[0] if f["aggregate"] == "FIRST" else times[-1]
                result[f["name"]] = (ts_ms - extreme) / 1000.0
        return result


class FraudBook:
    """Entities' Frauds in keyed value state, read through a bounded cache (as Histories: a
    state read per transaction would cross to the JVM, and frauds are rare, so most reads
    find nothing). This function is its keys' only writer, so a cached value is the state's."""

    def __init__(self, state, capacity: int) -> None:
        self.state, self.capacity = state, capacity
        self.cache: OrderedDict[str, Frauds] = OrderedDict()

    def get(self, key: str) -> Frauds:
        frauds = self.cache.get(key)
        if frauds is None:
            frauds = Frauds(self.state.value() or ())
        else:
            self.cache.move_to_end(key)
        return frauds

    def forget(self, key: str) -> None:
        """The current key's frauds gone from the cache and the state (an erasure)."""
        self.cache.pop(key, None)
        self.state.clear()

    def put(self, key: str, frauds: Frauds) -> None:
        if frauds.changed:
            self.state.update(list(frauds.entries))
            frauds.changed = False
        self.cache[key] = frauds
        if len(self.cache) > self.capacity:
            self.cache.popitem(last=False)


class Enricher:
    """A transaction's real-time features from its processed row and its user's history and
    frauds: the row features, every user window before it, the card's label features, and the
    derived features those allow. The counterpart of the batch SQL's `sequenced` and `base`
    steps is `History.previous`."""

    def __init__(self, spec: dict) -> None:
        self.row_features = RowFeatures(spec["row"])
        self.windows = Windows(spec["user_windows"])
        self.labels = LabelFeatures(spec["user_labels"], spec["label_delay_ms"])
        self.derived = RowFeatures(spec["derived"])
        # Late events may still arrive a little before the newest one; keep a day's margin.
        self.keep_ms = self.windows.horizon_ms + 86_400_000

    def enrich(self, history: History, frauds: Frauds, row: Row) -> dict[str, Any]:
        ts_ms = row["ts_ms"]
        row["prev_ts_ms"], previous_device = history.previous(ts_ms)
        row["device_changed"] = device_changed(previous_device, row.get("device_id"))
        features = self.row_features(row)
        features.update(self.windows.before(history, ts_ms, row))
        features.update(self.labels(frauds, ts_ms))
        features.update(self.derived({**row, **features}))
        history.record(row, self.windows, self.keep_ms)
        return features


class MerchantEnricher:
    """The merchant's side of a transaction's features, after the user's: its windows before
    the transaction and those ending a label delay before it, its label features, and the
    derived features that needed them."""

    def __init__(self, spec: dict) -> None:
        stored = [*spec["merchant_windows"], *spec["merchant_delayed_windows"]]
        self.windows = Windows(spec["merchant_windows"], stored)
        self.delayed = Windows(spec["merchant_delayed_windows"], stored)
        self.labels = LabelFeatures(spec["merchant_labels"], spec["label_delay_ms"])
        self.derived = RowFeatures(spec["merchant_derived"])
        self.delay_ms = spec["label_delay_ms"]
        horizon = max(self.windows.horizon_ms, self.delay_ms + self.delayed.horizon_ms)
        self.keep_ms = horizon + 86_400_000

    def enrich(self, history: History, frauds: Frauds, row: Row, features: dict) -> dict:
        ts_ms = row["ts_ms"]
        mine = self.windows.before(history, ts_ms)
        mine.update(self.delayed.before(history, ts_ms - self.delay_ms))
        mine.update(self.labels(frauds, ts_ms))
        mine.update(self.derived({**row, **features, **mine}))
        history.record(row, self.windows, self.keep_ms)
        return mine


# Replace a hash only with values as of the same or a later instant; an empty value deletes
# its field (an average over an empty window). KEYS[1]; ARGV: as_of_ms, ttl_ms, field, value...
WRITE_IF_NEWER = """
local stored = redis.call('HGET', KEYS[1], 'as_of_ms')
if stored and tonumber(stored) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'as_of_ms', ARGV[1])
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class OnlineWrites:
    """What the online store holds for an entity: its windows as of its latest event, one
    hash per user window or one per merchant, each with its window's TTL, as (key, script
    arguments of WRITE_IF_NEWER). The aggregates job writes these, and so does the recovery
    that rebuilds what a Redis restore lacks (fraud_platform.recovery.aggregates)."""

    def __init__(self, spec: dict, entity: str) -> None:
        self.spec, self.entity = spec, entity
        self.windows = Windows(spec["features"][f"online_{entity}_windows"])

    def __call__(self, entity_id: str, history: History) -> list[tuple[str, list]]:
        as_of = history.latest_ms()
        values = self.windows.as_of(history, as_of)
        keys = self.spec["keys"]
        if self.entity == "merchant":
            key = keys["merchant"].format(entity_id)
            return [(key, _args(as_of, self.windows.horizon_ms, values))]
        writes = []
        for window, ttl in self.spec["windows_ms"].items():
            fields = {f["name"]: values[f["name"]] for f in self.windows.features
                      if f["window"] == window}  # fmt: skip
            key = keys["user_window"].format(entity_id, window)
            writes.append((key, _args(as_of, ttl, fields)))
        return writes


def _args(as_of: int, ttl_ms: int, fields: dict) -> list:
    args: list = [as_of, ttl_ms]
    for name, value in fields.items():
        args += [name, "" if value is None else repr(float(value))]
    return args
