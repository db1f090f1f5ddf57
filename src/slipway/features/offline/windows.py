"""Time-window aggregations for training sets: in NumPy by default, in DuckDB as known at.

For an entity row (key ``k``, timestamp ``t``) a window of ``duration`` aggregates the
group's events of ``k`` with ``t - duration <= event_time <= t`` (both ends inclusive; the
online half is :mod:`slipway.features.views.window_eval`). A (key, event time) pair is one
event: when it was ingested twice, the later ingestion (higher ``_ingest_id``) wins, as in
point-in-time joins. ``count`` counts events (0 for an empty window); ``sum`` and ``mean``
(as float64), ``min`` and ``max`` take the non-null values (null when there are none);
``last`` is the value, null or not, of the window's latest event.

Three plans compute the same values. The default is the sorted plan
(:mod:`slipway.features.offline.sorted_windows`): one sort of the events by (key, time) in
NumPy, two binary searches per entity row and window, sums/minima/maxima by
``ufunc.reduceat``; a pair ingested twice is two neighbours after the sort, so the
de-duplication costs a comparison of neighbours (the SQL plans pay a hash aggregate). On 2
cores, 10M events and 1M entity rows, counts and means over 1h/24h/7d: 1.6-1.9 s where the
best hand-written DuckDB query takes 2.4-3.6 s (BENCHMARKS.md "Feature views"). The two
SQL plans in DuckDB remain, for "as known at" (below) and for the case the sorted plan
cannot code, more distinct identifiers times distinct times than 2**63 (it ranks the
times first when their microseconds are too many). ``method`` forces a plan. The SQL
plans deduplicate the events first (a hash aggregate that DuckDB makes of the
``row_number() = 1`` filter), and both treat time as integer microseconds, so a window is
exactly ``duration`` long (an ``INTERVAL '7 days'`` would follow the session's time zone
across a daylight-saving change):

- window functions: the entity rows are put among the events (``UNION ALL``), and one
  sort by (key, time) serves every window of the group — each is an aggregate ``OVER
  (PARTITION BY key ORDER BY time RANGE BETWEEN duration PRECEDING AND CURRENT ROW)``;
  ``CURRENT ROW`` in ``RANGE`` mode takes the row's peers, so events at exactly ``t`` are
  in, and the frame's start is inclusive. Then only the entity rows are kept. Its cost is
  a sort of events plus entity rows, whatever the data's shape: what a hand-written query
  does (1.1-1.3x the time of one without deduplication, below).
- a range join: each entity row joins the events of its key within the longest window
  (hash join on the key, the time range as a residual condition), then one ``GROUP BY``
  row computes every window with ``FILTER`` clauses. Its cost grows with the pairs of
  one key's entity rows and events, so it wins when keys are sparse and loses, badly,
  when they are dense. ``auto`` counts those pairs from the per-key counts of both sides
  (a scan of the key column: 0.2-1 s for 10M events) and takes the join when they are
  at most ``_JOIN_RATIO`` times the rows the window plan sorts.

Measured on 2 cores, 10M events over 30 days and 1M entity rows, counts and means over 1h,
24h and 7d (hand-written: the window plan without deduplication, on integer time):

    keys    events/key  hand-written  window plan  range join
    10k     1000        8.9 s         10.1 s       29.2 s
    100k    100         6.7 s         7.9 s        5.8 s
    1M      10          5.5 s         7.0 s        2.8 s

(The same query ordered by the ``TIMESTAMPTZ`` with ``INTERVAL`` frames took 10.8 s.)
A bucketed equi-join (on key and time // longest window, two buckets per entity row) was
slower than the plain range join on dense keys and no faster on sparse ones.

"As known at" (``as_known_at``) counts an event only if it had been ingested by ``t``
(``_ingested_at <= t``), and takes, of a pair ingested several times, the latest ingestion
known at ``t``: a correction ingested later does not leak into the row. The set of events
then differs per entity row, which window functions over one sorted stream cannot
express, so that mode always uses the range join (each event version carries the interval
of entity times at which it is the pair's current value): 6.9 s for the 100k keys above.
Deleted records are gone in both modes (a delete removes the rows from the table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from slipway.core.errors import InvalidInput
from slipway.features.definitions import FeatureGroup, FeatureType, validate_column
from slipway.features.offline.delta import DeltaOfflineStore
from slipway.features.offline.sorted_windows import TooWide, sorted_windows
from slipway.features.validation import TIMESTAMP, feature_arrow_type

if TYPE_CHECKING:
    from slipway.features.views.spec import WindowSpec

Method = Literal["auto", "sorted", "window", "join"]

# Windows that sum, average or compare values need numbers (bool counts as 0/1), as the
# feature views' own check says (slipway.features.views.service).
_NUMERIC = frozenset({FeatureType.INT, FeatureType.FLOAT, FeatureType.BOOL})
_COMPARABLE = _NUMERIC | {FeatureType.STRING, FeatureType.TIMESTAMP}
# The range join is chosen when a key's entity rows times its events, summed over keys, is
# at most this many times the rows the window plan would sort (measured: the join is 2.5x
# faster at a ratio of 1, 1.4x faster at 9, 3x slower at 90).
_JOIN_RATIO = 16


@dataclass(frozen=True)
class WindowColumns:
    """One column per window, in entity row order, and the Delta version of each group
    the windows read."""

    data: pa.Table
    group_versions: dict[str, int]


def micros(duration: timedelta) -> int:
    """A duration in whole microseconds, exactly (the resolution of event times)."""
    return duration // timedelta(microseconds=1)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def output_type(window: WindowSpec, group: FeatureGroup) -> pa.DataType:
    """The Arrow type of a window's column."""
    if window.function == "count":
        return pa.int64()
    if window.function in ("sum", "mean"):
        return pa.float64()
    assert window.column is not None  # the spec requires one for every other function
    return feature_arrow_type(group.feature(window.column))


def check_windows(
    windows: Sequence[tuple[str, WindowSpec]],
    groups: Mapping[str, FeatureGroup],
    taken: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Every window names a known group and one of its features that its function can
    take, and an output name no other column has (``taken``: the training set's others)."""
    seen = set(taken)
    for name, window in windows:
        validate_column(name, field="windows")
        if name in seen:
            raise InvalidInput(
                f"window {name!r} would be a second column named {name!r} in the result",
                field="windows",
            )
        seen.add(name)
        group = groups.get(window.group)
        if group is None:
            raise InvalidInput(
                f"window {name!r} reads feature group {window.group!r}, which is not known",
                field="window.group",
            )
        if window.column is None:
            continue
        feature = next((f for f in group.features if f.name == window.column), None)
        if feature is None:
            raise InvalidInput(
                f"window {name!r}: feature group {group.name!r} has no feature {window.column!r}",
                field="window.column",
            )
        allowed = {"sum": _NUMERIC, "mean": _NUMERIC, "min": _COMPARABLE, "max": _COMPARABLE}
        if window.function in allowed and feature.type not in allowed[window.function]:
            kind = "a numeric" if allowed[window.function] is _NUMERIC else "an ordered"
            raise InvalidInput(
                f"window {name!r}: {window.function} needs {kind} feature;"
                f" {window.column!r} is {feature.type.value}",
                field="window.column",
            )


def window_columns(
    store: DeltaOfflineStore,
    groups: Mapping[str, FeatureGroup],
    entities: pa.Table,
    windows: Sequence[tuple[str, WindowSpec]],
    *,
    row_column: str,
    timestamp_column: str,
    versions: Mapping[str, int] | None = None,
    as_known_at: bool = False,
    method: Method = "auto",
) -> WindowColumns:
    """Every window's value for every entity row.

    ``entities`` holds the row numbers (``row_column``, 0..n-1 in order), the timestamp
    (UTC, microseconds) and the record identifiers of the windows' groups, typed as the
    groups type them (as training sets prepare them). ``versions`` pins groups to a Delta
    version (a group read for stored features too must be read at the same one).
    ``method`` forces a plan (tests check both against one oracle)."""
    check_windows(windows, groups)
    by_group: dict[str, list[tuple[int, WindowSpec]]] = {}
    for index, (_, window) in enumerate(windows):
        by_group.setdefault(window.group, []).append((index, window))
    columns: list[pa.Array | pa.ChunkedArray | None] = [None] * len(windows)
    read: dict[str, int] = {}
    n = entities.num_rows
    con = duckdb.connect()
    try:
        keys_needed: list[str] = []
        for name in by_group:
            keys_needed.extend(k for k in groups[name].key_columns if k not in keys_needed)
        con.register("__sw_entities", entities.select([row_column, timestamp_column, *keys_needed]))
        times = entities.column(timestamp_column)
        bounds = pc.min_max(times).as_py() if n else {"min": None, "max": None}
        for number, (name, specs) in enumerate(by_group.items()):
            group = groups[name]
            if not group.offline:
                raise InvalidInput(
                    f"feature group {name!r} keeps no offline data to aggregate a window over",
                    field="window.group",
                )
            pinned = (versions or {}).get(name)
            dataset = None
            if pinned is not None or store.version(name) is not None:
                # One version, resolved once, for the read and for the lineage.
                read[name] = store.current_version(name, pinned)
                dataset = store.dataset(name, version=read[name])
            # else the group has no offline data yet: its windows are empty.
            values = _group_windows(
                con,
                group,
                dataset,
                entities,
                f"__sw_g{number}",
                specs,
                row_column=row_column,
                timestamp_column=timestamp_column,
                n=n,
                bounds=(bounds["min"], bounds["max"]),
                as_known_at=as_known_at,
                method=method,
            )
            for (index, window), column in zip(specs, values, strict=True):
                columns[index] = column.cast(output_type(window, group))
    finally:
        con.close()
    names = [name for name, _ in windows]
    data = pa.Table.from_arrays([c for c in columns if c is not None], names=names)
    return WindowColumns(data, read)


def _group_windows(
    con: duckdb.DuckDBPyConnection,
    group: FeatureGroup,
    dataset: pds.Dataset | None,
    entities: pa.Table,
    view: str,
    specs: list[tuple[int, WindowSpec]],
    *,
    row_column: str,
    timestamp_column: str,
    n: int,
    bounds: tuple[datetime | None, datetime | None],
    as_known_at: bool,
    method: Method,
) -> list[pa.ChunkedArray]:
    """The columns of one group's windows, computed in one query."""
    lo, hi = bounds
    if dataset is None or lo is None or hi is None:
        return [_empty(window, group, n) for _, window in specs]
    keys = [f"__sw_k{i}" for i in range(len(group.key_columns))]
    entity_keys = ", ".join(
        f"{_quote(column)} AS {alias}"
        for column, alias in zip(group.key_columns, keys, strict=True)
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW __sw_e AS SELECT {_quote(row_column)} AS __sw_row,"
        f" {entity_keys}, epoch_us({_quote(timestamp_column)}) AS __sw_u FROM __sw_entities"
    )
    durations = [micros(window.duration) for _, window in specs]
    longest = max(durations)
    # Only events within the entity rows' time span, less the longest window, can fall in
    # a window: a filter on the event-time column, which reaches the Parquet scan.
    event_time = _quote(group.event_time)
    start = lo - timedelta(microseconds=longest)
    span = (
        f"{event_time} >= '{start.isoformat()}'::TIMESTAMPTZ"
        f" AND {event_time} <= '{hi.isoformat()}'::TIMESTAMPTZ"
    )
    columns = list(dict.fromkeys(w.column for _, w in specs if w.column is not None))
    positions = {column: i for i, column in enumerate(columns)}
    if not as_known_at and method in ("auto", "sorted"):
        try:
            events = _read_events(dataset, group, columns, start, hi)
            if not events.num_rows:
                return [_empty(window, group, n) for _, window in specs]
            return [
                pa.chunked_array([column])
                for column in sorted_windows(
                    events,
                    group,
                    entities,
                    [window for _, window in specs],
                    timestamp_column=timestamp_column,
                )
            ]
        except TooWide:
            if method == "sorted":
                raise
    con.register(view, dataset)
    events = _events(group, view, entity_keys, span, columns, as_known_at=as_known_at)
    if as_known_at:
        plan = "join"
    elif method == "auto":
        plan = "join" if _join_is_cheaper(con, view, entity_keys, keys, span, n) else "window"
    else:
        plan = method
    if plan == "window":
        frames = {d: f"__sw_f{i}" for i, d in enumerate(dict.fromkeys(durations))}
        aggregates = [
            _aggregate(w, group, positions, plan, f" OVER {frames[d]}")
            for (_, w), d in zip(specs, durations, strict=True)
        ]
        sql = _window_sql(events, keys, len(columns), aggregates, frames)
    else:
        # A window shorter than the longest (which bounds the join) filters the pairs.
        aggregates = [
            _aggregate(
                w,
                group,
                positions,
                plan,
                f" FILTER (WHERE ev.__sw_u >= e.__sw_u - {d})" if d < longest else "",
            )
            for (_, w), d in zip(specs, durations, strict=True)
        ]
        sql = _join_sql(events, keys, aggregates, longest, as_known_at=as_known_at)
    result = con.sql(sql).to_arrow_table()
    if result.num_rows != n:  # one row per entity row, by construction
        raise RuntimeError(f"window aggregation gave {result.num_rows} rows for {n}")
    return [result.column(f"__sw_w{i}") for i in range(len(specs))]


def _read_events(
    dataset: pds.Dataset, group: FeatureGroup, columns: list[str], start: datetime, end: datetime
) -> pa.Table:
    """The group's events (every ingestion) with event time in ``[start, end]``: record
    identifiers, event time, ingestion id and the windows' columns."""
    time = pds.field(group.event_time)
    return dataset.to_table(
        columns=list(dict.fromkeys([*group.key_columns, group.event_time, "_ingest_id", *columns])),
        filter=(time >= pa.scalar(start, TIMESTAMP)) & (time <= pa.scalar(end, TIMESTAMP)),
    )


def _empty(window: WindowSpec, group: FeatureGroup, n: int) -> pa.ChunkedArray:
    if window.function == "count":
        return pa.chunked_array([pa.array([0] * n, pa.int64())])
    return pa.chunked_array([pa.nulls(n, output_type(window, group))])


def _events(
    group: FeatureGroup,
    view: str,
    keys: str,
    span: str,
    columns: list[str],
    *,
    as_known_at: bool,
) -> str:
    """The group's events the windows can see, with positional column names (``__sw_k*``
    keys, ``__sw_u`` time in microseconds, ``__sw_c*`` values), so no feature name can
    clash with the query's own.

    By default each (key, event time) keeps its latest ingestion. As known at, every
    ingestion of a pair is kept, with ``__sw_from`` (its ingestion time) and
    ``__sw_until`` (the earliest ingestion time of a later ingestion of the pair, if any):
    it is the pair's value for entity times in ``[from, until)``; a version superseded
    before it was ingested (two writers that committed out of order) never is, and is
    dropped."""
    event_time = _quote(group.event_time)
    values = "".join(f", {_quote(column)} AS __sw_c{i}" for i, column in enumerate(columns))
    pair = ", ".join(_quote(k) for k in group.key_columns) + f", {event_time}"
    select = f"SELECT {keys}, epoch_us({event_time}) AS __sw_u{values}"
    if not as_known_at:
        return (
            f"{select} FROM {view} WHERE {span}"
            f" QUALIFY row_number() OVER (PARTITION BY {pair} ORDER BY _ingest_id DESC) = 1"
        )
    return (
        f"{select}, epoch_us(_ingested_at) AS __sw_from,"
        f" epoch_us(min(_ingested_at) OVER (PARTITION BY {pair} ORDER BY _ingest_id DESC"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS __sw_until"
        f" FROM {view} WHERE {span} QUALIFY __sw_until IS NULL OR __sw_until > __sw_from"
    )


def _aggregate(
    window: WindowSpec, group: FeatureGroup, positions: Mapping[str, int], plan: str, suffix: str
) -> str:
    """The aggregate of one window over rows of events (``ev``), ``suffix`` (its ``OVER``
    or ``FILTER`` clause) attached to the call. For the window plan the entity rows are
    among the events, with null values and a null ``__sw_ev`` (an event's is true), so
    counting ``__sw_ev`` counts events and ``arg_max_null`` over ``__sw_eu`` (an event's
    time, an entity row's null) passes over entity rows."""
    value = ""
    if window.column is not None:
        value = f"ev.__sw_c{positions[window.column]}"
        boolean = group.feature(window.column).type is FeatureType.BOOL
        if boolean and window.function in ("sum", "mean"):
            value = f"CAST({value} AS INTEGER)"
    match window.function:
        case "count":
            return f"count(ev.__sw_ev){suffix}" if plan == "window" else f"count(ev.__sw_u){suffix}"
        case "sum":
            return f"CAST(sum({value}){suffix} AS DOUBLE)"
        case "mean":
            return f"avg({value}){suffix}"
        case "last":
            time = "ev.__sw_eu" if plan == "window" else "ev.__sw_u"
            return f"arg_max_null({value}, {time}){suffix}"
        case _:
            return f"{window.function}({value}){suffix}"


def _window_sql(
    events: str, keys: list[str], values: int, aggregates: list[str], frames: dict[int, str]
) -> str:
    """Entity rows among the events, every window an aggregate over its frame, one sort
    (windows of the same partition and order share it), then only the entity rows."""
    key_list = ", ".join(keys)
    nulls = "".join(f", NULL AS __sw_c{i}" for i in range(values))
    value_list = "".join(f", __sw_c{i}" for i in range(values))
    selects = ", ".join(f"{aggregate} AS __sw_w{i}" for i, aggregate in enumerate(aggregates))
    definitions = ", ".join(
        f"{frame} AS (PARTITION BY {key_list} ORDER BY __sw_u"
        f" RANGE BETWEEN {d} PRECEDING AND CURRENT ROW)"
        for d, frame in frames.items()
    )
    return (
        f"SELECT __sw_row, {selects} FROM ("
        f"SELECT {key_list}, __sw_u{value_list}, true AS __sw_ev, __sw_u AS __sw_eu,"
        f" NULL::BIGINT AS __sw_row FROM ({events})"
        f" UNION ALL SELECT {key_list}, __sw_u{nulls}, NULL, NULL, __sw_row FROM __sw_e) ev"
        f" WINDOW {definitions} QUALIFY __sw_row IS NOT NULL ORDER BY __sw_row"
    )


def _join_sql(
    events: str, keys: list[str], aggregates: list[str], longest: int, *, as_known_at: bool
) -> str:
    """Each entity row joined with its key's events in the longest window (and, as known
    at, the event versions current at the row's time), every window one aggregate."""
    condition = " AND ".join(f"e.{k} = ev.{k}" for k in keys)
    condition += f" AND ev.__sw_u <= e.__sw_u AND ev.__sw_u >= e.__sw_u - {longest}"
    if as_known_at:
        condition += (
            " AND ev.__sw_from <= e.__sw_u AND (ev.__sw_until IS NULL OR e.__sw_u < ev.__sw_until)"
        )
    selects = ", ".join(f"{aggregate} AS __sw_w{i}" for i, aggregate in enumerate(aggregates))
    return (
        f"SELECT e.__sw_row, {selects} FROM __sw_e e LEFT JOIN ({events}) ev ON {condition}"
        " GROUP BY e.__sw_row ORDER BY e.__sw_row"
    )


def _join_is_cheaper(
    con: duckdb.DuckDBPyConnection, view: str, entity_keys: str, keys: list[str], span: str, n: int
) -> bool:
    """Whether the range join is the cheaper plan: the pairs of one key's entity rows and
    events it compares, summed over keys, against the rows the window plan sorts. From
    the per-key counts of both sides: one scan of the events' key columns."""
    key_list = ", ".join(keys)
    ((events, pairs),) = con.execute(
        f"WITH g AS (SELECT {entity_keys}, count(*) AS n FROM {view} WHERE {span}"
        f" GROUP BY ALL), e AS (SELECT {key_list}, count(*) AS n FROM __sw_e GROUP BY ALL)"
        " SELECT (SELECT coalesce(sum(n), 0) FROM g),"
        f" coalesce(sum(g.n * e.n), 0) FROM g JOIN e USING ({key_list})"
    ).fetchall()
    return int(pairs) <= _JOIN_RATIO * (int(events) + n)
