"""Time-window aggregations by one sort of the events and binary searches (the "sorted" plan).

The same windows as :mod:`slipway.features.offline.windows` defines (``t - duration <=
event_time <= t``, a (key, event time) pair counted once, from its latest ingestion),
computed in NumPy instead of SQL:

1. Each event gets one integer, ``key code << bits | time``: the record identifiers
   dictionary-encoded, the time in microseconds since a base far enough before every
   window's start that ``time - duration`` never reaches the previous key's range. One
   ``argsort`` orders the events by key, then time.
2. A (key, event time) ingested twice is two equal integers side by side: keeping the
   latest ingestion needs a look at those runs only (usually none: the check is one
   comparison of neighbours), not the hash aggregate a SQL de-duplication is.
3. For an entity row ``(k, t)``, the events of a window are the slice between two binary
   searches, ``k << bits | t - duration`` (first at or after) and ``k << bits | t`` (last
   at or before): a count is the slice's length, ``last`` its last element, and sums,
   minima and maxima one ``ufunc.reduceat`` over all slices.

Its cost is a sort of the events plus ``O(log n)`` per entity row and window, and the
sums touch each window's events once — against a hash join (quadratic in one key's rows)
or a sort of events and entity rows together with window frames (the SQL plans). On 2
cores, 10M events and 1M entity rows, counts and means over 1 h / 24 h / 7 d: 1.4-1.9 s,
where the best hand-written DuckDB query (a range join) takes 2.0-2.4 s.

When the key codes and the span of times do not fit 63 bits (many keys over years), the
times are replaced by their ranks among every time the computation compares (events',
entity rows', and each window's start), which keep their order and need far fewer bits.

Everything is in memory: the events inside the entity rows' time span (less the longest
window), as Arrow columns plus three 8-byte arrays per event.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slipway.features.definitions import FeatureGroup, FeatureType

if TYPE_CHECKING:
    from slipway.features.views.spec import WindowSpec

_BITS = 63  # an int64's non-negative range
_THREADS = 2


class TooWide(Exception):
    """The record identifiers and times need more than one int64 per event: the caller
    takes another plan."""


_INT_LIKE = frozenset({FeatureType.INT, FeatureType.BOOL, FeatureType.TIMESTAMP})


@dataclass(frozen=True)
class _Sorted:
    """The group's events in (key, time) order, each pair once, and where every entity
    row's windows end."""

    order: np.ndarray  # positions in the events as read, sorted and de-duplicated
    codes: np.ndarray  # each kept event's ``key << bits | time``
    entity_order: np.ndarray  # entity rows sorted by their own code
    entity_codes: np.ndarray  # sorted
    missing: np.ndarray  # per sorted entity row: its key has no events
    shift: int
    time_of: _TimeMap


@dataclass(frozen=True)
class _TimeMap:
    """Event and entity times (microseconds) to the integers the codes hold: the time
    less a base, or, when that needs too many bits, its rank among the times compared."""

    base: int
    ranks: np.ndarray | None  # sorted distinct times, when times are ranked

    def __call__(self, times: np.ndarray) -> np.ndarray:
        if self.ranks is None:
            return times - self.base
        return np.searchsorted(self.ranks, times)


def sorted_windows(
    events: pa.Table,
    group: FeatureGroup,
    entities: pa.Table,
    specs: Sequence[WindowSpec],
    *,
    timestamp_column: str,
) -> list[pa.Array]:
    """Each window's column, in the order of ``entities``.

    ``events`` holds the group's record identifiers, its event time, ``_ingest_id`` and
    every column the windows read (the rows inside the entity rows' span, every
    ingestion); ``entities`` the same record identifiers, typed alike, and
    ``timestamp_column``."""
    durations = [_micros(spec) for spec in specs]
    ready = _sort(events, group, entities, timestamp_column, durations)
    ends = np.searchsorted(ready.codes, ready.entity_codes, side="right")
    entity_times = _entity_times(entities, timestamp_column)[ready.entity_order]
    slices: dict[int, _Slices] = {}
    for duration in dict.fromkeys(durations):  # windows of one duration share them
        starts = np.searchsorted(ready.codes, _start_codes(ready, entity_times, duration))
        starts[ready.missing] = ends[ready.missing]
        slices[duration] = _Slices(starts, ends)
    back = np.empty(len(ready.entity_order), dtype=np.int64)
    back[ready.entity_order] = np.arange(len(ready.entity_order), dtype=np.int64)
    unsort = pa.array(back)
    columns = _SortedColumns(events, ready.order)

    def window(spec: WindowSpec, duration: int) -> pa.Array:
        return _aggregate(columns, group, spec, slices[duration]).take(unsort)

    # NumPy and Arrow let go of the GIL in their loops: two windows at a time use both
    # cores of a small machine.
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        return list(pool.map(window, specs, durations))


@dataclass(frozen=True)
class _Slices:
    """Where each sorted entity row's window starts and ends among the sorted events,
    and the two interleaved (what ``ufunc.reduceat`` takes)."""

    starts: np.ndarray
    ends: np.ndarray

    @functools.cached_property
    def bounds(self) -> np.ndarray:
        bounds = np.empty(2 * len(self.starts), dtype=np.int64)
        bounds[0::2] = self.starts
        bounds[1::2] = self.ends
        return bounds


def _micros(spec: WindowSpec) -> int:
    return spec.duration // timedelta(microseconds=1)


def _entity_times(entities: pa.Table, column: str) -> np.ndarray:
    return _as_int64(entities.column(column))


def _as_int64(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp or integer column (no nulls) as int64 NumPy values."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return np.asarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _sort(
    events: pa.Table,
    group: FeatureGroup,
    entities: pa.Table,
    timestamp_column: str,
    durations: Sequence[int],
) -> _Sorted:
    event_keys, entity_keys, missing, cardinality = _key_codes(events, entities, group)
    times = _as_int64(events.column(group.event_time))
    entity_times = _entity_times(entities, timestamp_column)
    key_bits = max(int(cardinality - 1).bit_length(), 1)
    longest = max(durations)
    low = min(int(times.min()) if len(times) else 0, int(entity_times.min())) - longest
    high = max(int(times.max()) if len(times) else 0, int(entity_times.max()))
    time_bits = max(high - low, 1).bit_length()
    if key_bits + time_bits <= _BITS:
        time_of = _TimeMap(low, None)
    else:
        compared = [times, entity_times, *(entity_times - d for d in set(durations))]
        compared_times = np.unique(np.concatenate(compared))
        time_of = _TimeMap(0, compared_times)
        time_bits = max(len(compared_times), 1).bit_length()
        if key_bits + time_bits > _BITS:
            raise TooWide("more distinct keys and times than one int64 code holds")
    shift = time_bits
    codes = (event_keys << shift) | time_of(times)
    order = np.argsort(codes)
    codes = codes[order]
    same = codes[1:] == codes[:-1]
    if same.any():
        order, codes = _latest_of_each_pair(events, order, codes, same)
    entity_codes = (entity_keys << shift) | time_of(entity_times)
    entity_order = np.argsort(entity_codes)
    return _Sorted(
        order=order,
        codes=codes,
        entity_order=entity_order,
        entity_codes=entity_codes[entity_order],
        missing=missing[entity_order],
        shift=shift,
        time_of=time_of,
    )


def _start_codes(ready: _Sorted, entity_times: np.ndarray, duration: int) -> np.ndarray:
    """The code of each (sorted) entity row's window start, ``t - duration``, under its
    key: the key's bits are those of the row's own code."""
    keys: np.ndarray = ready.entity_codes >> ready.shift
    starts: np.ndarray = (keys << ready.shift) | ready.time_of(entity_times - duration)
    return starts


def _latest_of_each_pair(
    events: pa.Table, order: np.ndarray, codes: np.ndarray, same: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Of each run of equal codes (a pair ingested more than once), the row of the
    highest ``_ingest_id`` alone."""
    in_run = np.zeros(len(codes), dtype=bool)
    in_run[1:] |= same
    in_run[:-1] |= same
    runs = np.flatnonzero(in_run)
    ingest = _as_int64(events.column("_ingest_id"))[order[runs]]
    by_ingest = runs[np.lexsort((ingest, codes[runs]))]
    last = np.ones(len(by_ingest), dtype=bool)
    last[:-1] = codes[by_ingest[1:]] != codes[by_ingest[:-1]]
    keep = ~in_run
    keep[by_ingest[last]] = True
    kept: tuple[np.ndarray, np.ndarray] = (order[keep], codes[keep])
    return kept


def _key_codes(
    events: pa.Table, entities: pa.Table, group: FeatureGroup
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Each event's and entity row's record identifiers as one integer in
    ``[0, cardinality)`` (the same integer for the same identifiers), and which entity
    rows' identifiers no event has."""
    event_codes = np.zeros(events.num_rows, dtype=np.int64)
    entity_codes = np.zeros(entities.num_rows, dtype=np.int64)
    missing = np.zeros(entities.num_rows, dtype=bool)
    cardinality = 1
    for column in group.key_columns:
        values = events.column(column)
        wanted = entities.column(column)
        if values.type != wanted.type:
            wanted = wanted.cast(values.type)
        if pa.types.is_integer(values.type) and len(values):
            # Integers code themselves, less the smallest: no hashing.
            bounds = pc.min_max(values).as_py()
            low, size = int(bounds["min"]), int(bounds["max"]) - int(bounds["min"]) + 1
            if size <= 4 * len(values):
                codes = _as_int64(values) - low
                theirs = _as_int64(wanted.fill_null(low)) - low
                outside = (theirs < 0) | (theirs >= size)
                outside |= np.asarray(wanted.is_null().to_numpy(zero_copy_only=False), dtype=bool)
                theirs[outside] = 0
                _check_fits(cardinality, size)
                event_codes = event_codes * size + codes
                entity_codes = entity_codes * size + theirs
                missing |= outside
                cardinality *= size
                continue
        distinct = pc.unique(values)
        codes = _as_int64(pc.index_in(values, value_set=distinct))
        found = pc.index_in(wanted, value_set=distinct)
        missing |= np.asarray(found.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        size = max(len(distinct), 1)
        _check_fits(cardinality, size)
        event_codes = event_codes * size + codes
        entity_codes = entity_codes * size + _as_int64(found.fill_null(0))
        cardinality *= size
    return event_codes, entity_codes, missing, cardinality


class _SortedColumns:
    """The events' value columns in sorted, de-duplicated order, each prepared once for
    every window that reads it."""

    def __init__(self, events: pa.Table, order: np.ndarray) -> None:
        self._events = events
        self.order = order
        self._arrays: dict[str, pa.Array] = {}
        self._seen: dict[str, np.ndarray] = {}
        self._numbers: dict[tuple[str, str, object], np.ndarray] = {}

    def arrow(self, name: str) -> pa.Array:
        """The column as read (positions are the events', not sorted)."""
        if name not in self._arrays:
            column = self._events.column(name)
            self._arrays[name] = (
                column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            )
        return self._arrays[name]

    def seen(self, name: str) -> np.ndarray:
        """How many non-null values precede each sorted position (one more entry than
        events): a window's non-null count is two look-ups."""
        if name not in self._seen:
            valid = self.arrow(name).is_valid().to_numpy(zero_copy_only=False)
            counts = np.zeros(len(self.order) + 1, dtype=np.int64)
            np.cumsum(np.asarray(valid, dtype=bool)[self.order], out=counts[1:])
            self._seen[name] = counts
        return self._seen[name]

    def numbers(self, name: str, dtype: type, fill: object) -> np.ndarray:
        """The values in sorted order as ``dtype``, nulls as ``fill``, and one more
        ``fill`` at the end (:func:`_reduce` may index one past the last event)."""
        key = (name, np.dtype(dtype).str, fill)
        if key not in self._numbers:
            column = self.arrow(name)
            if pa.types.is_boolean(column.type) or pa.types.is_timestamp(column.type):
                column = column.cast(pa.int64())
            if column.null_count:
                column = column.fill_null(pa.scalar(fill, column.type))
            array: np.ndarray = np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)
            self._numbers[key] = _padded(array[self.order], fill)
        return self._numbers[key]


def _check_fits(cardinality: int, size: int) -> None:
    if cardinality * size >= 2**_BITS:
        raise TooWide("more distinct record identifiers than an int64 holds")


def _aggregate(
    columns: _SortedColumns, group: FeatureGroup, spec: WindowSpec, slices: _Slices
) -> pa.Array:
    """One window's values for the sorted entity rows, whose events are the sorted
    positions ``starts[i]:ends[i]``."""
    starts, ends = slices.starts, slices.ends
    counts = ends - starts
    if spec.function == "count":
        return pa.array(counts, pa.int64())
    assert spec.column is not None
    column = columns.arrow(spec.column)
    if spec.function == "last":
        positions = columns.order[np.maximum(ends - 1, 0)]
        return column.take(pa.array(positions, mask=counts == 0))
    seen = columns.seen(spec.column)
    present = seen[ends] - seen[starts]
    none = present == 0
    feature = group.feature(spec.column).type
    if spec.function in ("sum", "mean"):
        if feature is FeatureType.FLOAT:
            values = columns.numbers(spec.column, np.float64, 0.0)
        else:
            values = columns.numbers(spec.column, np.int64, 0)
        sums = _reduce(np.add, values, slices).astype(np.float64)
        if spec.function == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                sums = sums / present
        return pa.array(sums, mask=none)
    return _extreme(columns, spec.column, feature, spec.function, slices, none)


def _extreme(
    columns: _SortedColumns,
    name: str,
    feature: FeatureType,
    function: str,
    slices: _Slices,
    none: np.ndarray,
) -> pa.Array:
    """``min`` or ``max`` of the non-null values: on the values themselves for integers,
    booleans, times and floats without NaN; otherwise on their ranks in Arrow's sort
    order (NaN above every number, as DuckDB orders it; strings by code point)."""
    ufunc = np.minimum if function == "min" else np.maximum
    column = columns.arrow(name)
    lowest = function == "min"
    if feature is FeatureType.FLOAT and not pc.any(pc.is_nan(column)).as_py():
        values = columns.numbers(name, np.float64, np.inf if lowest else -np.inf)
        return pa.array(_reduce(ufunc, values, slices), mask=none)
    info = np.iinfo(np.int64)
    if feature in _INT_LIKE:
        values = columns.numbers(name, np.int64, info.max if lowest else info.min)
        return pa.array(_reduce(ufunc, values, slices), mask=none).cast(column.type)
    ranks = np.asarray(pc.rank(column, tiebreaker="dense"), dtype=np.int64)  # nulls last
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    sentinel = info.max if lowest else info.min
    ranks[~valid] = sentinel
    reduced = _reduce(ufunc, _padded(ranks[columns.order], sentinel), slices)
    first_of_rank = np.zeros(int(ranks[valid].max(initial=0)) + 1, dtype=np.int64)
    first_of_rank[ranks[valid]] = np.flatnonzero(valid)
    picks = first_of_rank[np.where(none, 0, reduced)]
    return column.take(pa.array(picks, mask=none))


def _padded(values: np.ndarray, fill: object) -> np.ndarray:
    padded = np.empty(len(values) + 1, dtype=values.dtype)
    padded[:-1] = values
    padded[-1] = fill
    return padded


def _reduce(ufunc: np.ufunc, padded: np.ndarray, slices: _Slices) -> np.ndarray:
    """``ufunc`` over ``padded[starts[i]:ends[i]]`` for every ``i`` (entity rows sorted,
    so consecutive slices move forward); an empty slice gives an arbitrary value the
    caller masks. One ``reduceat`` over the starts and ends interleaved: the odd results
    (from one row's end to the next row's start) are dropped. ``padded`` has one element
    past the events, as ``reduceat`` indexes an end equal to their number."""
    if not len(slices.starts):
        return padded[:0]
    result: np.ndarray = ufunc.reduceat(padded, slices.bounds)[0::2]
    return result
