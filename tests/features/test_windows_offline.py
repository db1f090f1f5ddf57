"""Time-window aggregations and "as known at" in training sets, against a pandas oracle.

The store is the real one (SQLite metadata, Delta offline tables in a temporary
directory); the oracle is plain pandas over the history the test wrote, computed per
entity row, independently of DuckDB.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings
from slipway.features.definitions import FeatureGroup
from slipway.features.offline.training import TrainingSetDefinition, build_training_set
from slipway.features.offline.windows import window_columns
from slipway.features.store import FeatureStore
from slipway.features.validation import TIMESTAMP
from slipway.features.views.spec import WindowSpec
from slipway.services import Services

ROW = "__slipway_row"
KEYS = ["a", "b", "c"]
STEP = timedelta(minutes=10)
DURATIONS = ["10m", "30m", "1h"]
# (function, column): every function, on a float, an int and a string feature.
AGGREGATES = [
    ("count", None),
    *((f, "x") for f in ("sum", "mean", "min", "max", "last")),
    *((f, "n") for f in ("sum", "min", "last")),
    *((f, "s") for f in ("min", "max", "last")),
]
WINDOWS = [
    (f"{f}_{c or 'events'}_{d}", WindowSpec(group="g", column=c, function=f, duration=d))
    for (f, c), d in itertools.product(AGGREGATES, DURATIONS)
]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    opened = Services.open(load_settings(home=tmp_path_factory.mktemp("windows") / "home"))
    yield opened
    opened.close()


_names = itertools.count()


def _events_group(fs: FeatureStore) -> FeatureGroup:
    """A fresh group per example (one store serves them all)."""
    return fs.create_group(
        {
            "name": f"events-{next(_names)}",
            "record_identifiers": [{"name": "k"}],
            "features": [
                {"name": "x", "type": "float"},
                {"name": "n", "type": "int"},
                {"name": "s", "type": "string"},
            ],
            "online": False,
        }
    ).spec


def _windows_of(group: str) -> list[tuple[str, WindowSpec]]:
    return [(name, spec.model_copy(update={"group": group})) for name, spec in WINDOWS]


# -- the oracle ------------------------------------------------------------------------


def _visible(history: pd.DataFrame, key: str, at: datetime, as_known_at: bool) -> pd.DataFrame:
    """The key's events as seen at ``at``: one per event time, from the latest ingestion
    (only ingestions at or before ``at`` as known at), sorted by event time."""
    rows = history[history["k"] == key]
    if as_known_at:
        rows = rows[rows["ingested_at"] <= at]
    rows = rows.sort_values(["event_time", "ingest"])
    return rows.drop_duplicates("event_time", keep="last")


def _aggregate(events: pd.DataFrame, function: str, column: str | None) -> Any:
    if function == "count":
        return len(events)
    assert column is not None
    if function == "last":
        if events.empty:
            return None
        value = events[column].iloc[-1]
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    present = [v for v in events[column] if v is not None and not pd.isna(v)]
    if not present:
        return None
    if function == "sum":
        return float(sum(present))
    if function == "mean":
        return float(sum(present)) / len(present)
    return min(present) if function == "min" else max(present)


def _oracle(
    history: pd.DataFrame,
    entities: list[tuple[str, datetime]],
    windows: list[tuple[str, WindowSpec]],
    as_known_at: bool,
) -> dict[str, list[Any]]:
    """Per entity row and window, the events with ``t - duration <= event_time <= t``;
    and the stored feature ``x`` of the latest event at or before ``t``."""
    out: dict[str, list[Any]] = {name: [] for name, _ in windows}
    out["x"] = []
    for key, at in entities:
        events = _visible(history, key, at, as_known_at)
        past = events[events["event_time"] <= at]
        latest = past["x"].iloc[-1] if len(past) else None
        out["x"].append(None if latest is None or pd.isna(latest) else latest)
        for name, window in windows:
            inside = past[past["event_time"] >= at - window.duration]
            out[name].append(_aggregate(inside, window.function, window.column))
    return out


def _same(got: list[Any], want: list[Any], name: str) -> None:
    assert len(got) == len(want), name
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if w is None or g is None:
            assert g is None and w is None, (name, i, g, w)
        elif isinstance(w, float):
            assert math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12), (name, i, g, w)
        else:
            assert g == w and type(g) is type(w), (name, i, g, w)


# -- the property ----------------------------------------------------------------------

_value = st.one_of(st.none(), st.integers(-20, 20))
_event = st.tuples(
    st.sampled_from(KEYS),
    st.integers(0, 7),  # a coarse grid of event times: ties with entity rows and windows
    _value,
    _value,
    st.one_of(st.none(), st.sampled_from(["p", "q", "r"])),
)
# One fact per (key, event time) within a batch; across batches the same pair recurs.
_batch = st.lists(_event, min_size=1, max_size=8, unique_by=lambda e: (e[0], e[1]))
_step = st.one_of(
    _batch.map(lambda b: ("ingest", b)),
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True).map(
        lambda keys: ("delete", keys)
    ),
)
_entity = st.tuples(
    st.sampled_from([*KEYS, "z"]),
    st.one_of(
        st.tuples(st.just("grid"), st.integers(0, 9)),
        # at an ingestion's time, or a microsecond either side of it
        st.tuples(st.just("ingest"), st.integers(0, 3), st.sampled_from([-1, 0, 1])),
    ),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=_batch,
    steps=st.lists(_step, max_size=3),
    entity_specs=st.lists(_entity, min_size=1, max_size=12),
)
def test_windows_match_the_oracle(
    services: Services,
    first: list[tuple[str, int, int | None, int | None, str | None]],
    steps: list[tuple[str, Any]],
    entity_specs: list[tuple[str, tuple[Any, ...]]],
) -> None:
    """Event times on a grid around now (some after their ingestion), corrections by
    re-ingestion, nulls and deletes; entity rows on the grid and at the ingestion times
    (read back from the table, so "as known at" is tested without waiting). Both plans,
    the automatic choice and "as known at" equal the oracle, and so does the stored
    feature beside them."""
    fs = services.features
    group = _events_group(fs)
    base = utcnow().replace(second=0, microsecond=0) - 4 * STEP
    history: list[dict[str, Any]] = []
    ingested: list[datetime] = []
    for number, (kind, payload) in enumerate([("ingest", first), *steps]):
        if kind == "delete":
            fs.delete_records(group.name, [{"k": k} for k in payload], actor="test")
            history = [row for row in history if row["k"] not in payload]
            continue
        records = [
            {
                "k": k,
                "event_time": base + slot * STEP,
                "x": None if x is None else x / 2,
                "n": n,
                "s": s,
            }
            for k, slot, x, n, s in payload
        ]
        done = fs.ingest(group.name, records)
        written = fs.read_offline(group.name, version=done.offline_version)
        mine = written.filter(pc.equal(written["_ingest_id"], done.id))
        (at,) = set(mine["_ingested_at"].to_pylist())  # one time per ingestion
        ingested.append(at)
        history += [dict(r, ingest=number, ingested_at=at) for r in records]
    frame = pd.DataFrame(
        history, columns=["k", "event_time", "x", "n", "s", "ingest", "ingested_at"], dtype=object
    )
    entities: list[tuple[str, datetime]] = []
    for key, (kind, *where) in entity_specs:
        if kind == "grid":
            entities.append((key, base + where[0] * STEP))
        else:
            at = ingested[where[0] % len(ingested)]
            entities.append((key, at + timedelta(microseconds=where[1])))
    table = pa.table(
        {
            "k": [k for k, _ in entities],
            "event_timestamp": pa.array([t for _, t in entities], TIMESTAMP),
            "i": list(range(len(entities))),
        }
    )
    windows = _windows_of(group.name)
    groups = {group.name: group}
    for as_known_at in (False, True):
        want = _oracle(frame, entities, windows, as_known_at)
        result = build_training_set(
            fs.offline,
            groups,
            table,
            [f"{group.name}:x"],
            windows=windows,
            as_known_at=as_known_at,
        )
        data = result.data
        assert data.column_names == ["k", "event_timestamp", "i", "x", *(n for n, _ in windows)]
        assert data["i"].to_pylist() == list(range(len(entities)))  # row order kept
        assert result.definition.as_known_at is as_known_at
        for name in want:
            _same(data[name].to_pylist(), want[name], f"{name} (as known at: {as_known_at})")
    # Each plan by itself, on the same rows (the automatic choice took one of them).
    prepared = table.select(["event_timestamp", "k"]).append_column(
        ROW, pa.array(np.arange(len(entities), dtype=np.int64))
    )
    want = _oracle(frame, entities, windows, False)
    for method in ("sorted", "window", "join"):
        computed = window_columns(
            fs.offline,
            groups,
            prepared,
            windows,
            row_column=ROW,
            timestamp_column="event_timestamp",
            method=method,
        )
        for name, _ in windows:
            _same(computed.data[name].to_pylist(), want[name], f"{name} ({method})")


# -- "as known at" -----------------------------------------------------------------------


def _ingested_at(fs: FeatureStore, group: str, ingest: Any) -> datetime:
    """When ``ingest`` was written, as the table stamped its rows."""
    rows = fs.read_offline(group, version=ingest.offline_version)
    (at,) = set(rows.filter(pc.equal(rows["_ingest_id"], ingest.id))["_ingested_at"].to_pylist())
    return at  # type: ignore[no-any-return]


def test_a_later_correction_and_a_late_event_are_not_known_before_their_ingestion(
    services: Services,
) -> None:
    fs = services.features
    group = _events_group(fs)
    name = group.name
    happened = utcnow() - timedelta(minutes=30)
    first = fs.ingest(name, [{"k": "a", "event_time": happened, "x": 1.0}])
    # A correction of that event and an event that happened before the first ingestion
    # but arrived after it.
    second = fs.ingest(
        name,
        [
            {"k": "a", "event_time": happened, "x": 2.0},
            {"k": "a", "event_time": happened + timedelta(minutes=5), "x": 10.0},
        ],
    )
    known, later = _ingested_at(fs, name, first), _ingested_at(fs, name, second)
    assert later > known  # two commits, one after the other
    entities = pd.DataFrame(
        {"k": ["a", "a", "a"], "event_timestamp": [known, later - timedelta(microseconds=1), later]}
    )
    windows = [
        ("total", WindowSpec(group=name, column="x", function="sum", duration="1h")),
        ("events", WindowSpec(group=name, function="count", duration="1h")),
        ("latest", WindowSpec(group=name, column="x", function="last", duration="1h")),
    ]
    groups = {name: group}
    table = pa.Table.from_pandas(entities, preserve_index=False)

    default = build_training_set(fs.offline, groups, table, [f"{name}:x"], windows=windows)
    assert default.data["x"].to_pylist() == [10.0, 10.0, 10.0]  # latest by event time
    assert default.data["total"].to_pylist() == [12.0, 12.0, 12.0]
    assert default.data["events"].to_pylist() == [2, 2, 2]

    as_known = build_training_set(
        fs.offline, groups, table, [f"{name}:x"], windows=windows, as_known_at=True
    )
    assert as_known.data["x"].to_pylist() == [1.0, 1.0, 10.0]
    assert as_known.data["total"].to_pylist() == [1.0, 1.0, 12.0]
    assert as_known.data["events"].to_pylist() == [1, 1, 2]
    assert as_known.data["latest"].to_pylist() == [1.0, 1.0, 10.0]
    assert as_known.definition.as_known_at and not default.definition.as_known_at
    assert as_known.definition.group_versions == {name: second.offline_version}

    # The same through the feature store, for stored features.
    through_store = fs.training_set(entities, [f"{name}:x"], as_known_at=True)
    assert through_store.to_pandas()["x"].tolist() == [1.0, 1.0, 10.0]
    assert fs.training_set(entities, [f"{name}:x"]).to_pandas()["x"].tolist() == [10.0] * 3


def test_as_known_at_with_one_record_per_key(services: Services) -> None:
    """A group in which no key recurs takes the hash join: the ingestion time counts
    there too, and so does an event time after the ingestion."""
    fs = services.features
    group = _events_group(fs)
    name = group.name
    now = utcnow()
    ingest = fs.ingest(
        name,
        [
            {"k": "a", "event_time": now - timedelta(hours=1), "x": 1.0},
            {"k": "b", "event_time": now + timedelta(hours=1), "x": 2.0},  # a forecast
        ],
    )
    at = _ingested_at(fs, name, ingest)
    entities = pd.DataFrame(
        {
            "k": ["a", "a", "b", "b"],
            "event_timestamp": [
                at - timedelta(microseconds=1),
                at,
                at,
                now + timedelta(hours=1),
            ],
        }
    )
    known = fs.training_set(entities, [f"{name}:x"], as_known_at=True).to_pandas()["x"]
    assert known.isna().tolist() == [True, False, True, False]
    default = fs.training_set(entities, [f"{name}:x"]).to_pandas()["x"]
    assert default.isna().tolist() == [False, False, True, False]
    assert default[[0, 1, 3]].tolist() == [1.0, 1.0, 2.0]


def test_old_definitions_still_load() -> None:
    recorded: dict[str, Any] = {  # as a definition written before windows existed
        "feature_refs": ["g:x"],
        "timestamp_column": "event_timestamp",
        "entity_rows": 1,
        "entity_digest": "0" * 64,
        "group_versions": {"g": 0},
        "ttl_seconds": {"g": None},
    }
    definition = TrainingSetDefinition(**recorded)
    assert definition.as_known_at is False and definition.windows == {}


# -- several groups, composite keys, windows alone ------------------------------------------


def test_windows_of_two_groups_with_composite_keys_and_no_stored_features(
    services: Services,
) -> None:
    fs = services.features
    trips = fs.create_group(
        {
            "name": f"trips-{next(_names)}",
            "record_identifiers": [
                {"name": "city", "type": "string"},
                {"name": "zone", "type": "int"},
            ],
            "event_time": "at",
            "features": [{"name": "fare", "type": "float"}, {"name": "paid", "type": "bool"}],
            "online": False,
        }
    ).spec
    empty = _events_group(fs)  # no offline data: its windows are empty
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    fs.ingest(
        trips.name,
        [
            {"city": "x", "zone": 1, "at": t0, "fare": 5.0, "paid": True},
            {"city": "x", "zone": 1, "at": t0 + timedelta(hours=2), "fare": 7.0, "paid": False},
            {"city": "x", "zone": 2, "at": t0, "fare": 100.0, "paid": True},
        ],
    )
    entities = pa.table(
        {
            "zone": [1, 1, 2, 3],
            "city": ["x", "x", "x", "x"],
            "event_timestamp": pa.array(
                [t0 + timedelta(hours=2), t0 + timedelta(hours=1), t0, t0], TIMESTAMP
            ),
            "k": ["a", "a", "a", "a"],
        }
    )
    windows = [
        ("fares", WindowSpec(group=trips.name, column="fare", function="sum", duration="2h")),
        ("paid_share", WindowSpec(group=trips.name, column="paid", function="mean", duration="1d")),
        ("any_paid", WindowSpec(group=trips.name, column="paid", function="max", duration="1d")),
        ("clicks", WindowSpec(group=empty.name, function="count", duration="1h")),
        ("last_click", WindowSpec(group=empty.name, column="s", function="last", duration="1h")),
    ]
    groups = {trips.name: trips, empty.name: empty}
    result = build_training_set(fs.offline, groups, entities, [], windows=windows)
    data = result.data
    assert data.column_names == ["zone", "city", "event_timestamp", "k", *(n for n, _ in windows)]
    assert data["fares"].to_pylist() == [12.0, 5.0, 100.0, None]
    assert data["paid_share"].to_pylist() == [0.5, 1.0, 1.0, None]
    assert data["any_paid"].to_pylist() == [True, True, True, None]
    assert data["clicks"].to_pylist() == [0, 0, 0, 0]
    assert data["last_click"].to_pylist() == [None] * 4
    assert data.schema.field("clicks").type == pa.int64()
    assert data.schema.field("last_click").type == pa.string()
    assert result.definition.feature_refs == []
    assert result.definition.group_versions == {trips.name: 0}
    assert result.definition.windows["fares"] == {
        "group": trips.name,
        "column": "fare",
        "function": "sum",
        "duration": "2h",
    }


# -- bad input ---------------------------------------------------------------------------


def test_bad_windows_are_refused_naming_the_field(services: Services) -> None:
    fs = services.features
    group = _events_group(fs)
    name = group.name
    fs.ingest(name, [{"k": "a", "event_time": datetime(2024, 1, 1, tzinfo=UTC), "x": 1.0}])
    groups = {name: group}
    table = pa.table(
        {
            "k": ["a"],
            "event_timestamp": pa.array([datetime(2024, 1, 1, tzinfo=UTC)], TIMESTAMP),
            "label": [1],
        }
    )

    def build(windows: list[tuple[str, WindowSpec]], refs: list[str] | None = None) -> None:
        build_training_set(fs.offline, groups, table, refs or [], windows=windows)

    count = WindowSpec(group=name, function="count", duration="1h")
    with pytest.raises(InvalidInput, match="nowhere") as missing_group:
        build([("c", WindowSpec(group="nowhere", function="count", duration="1h"))])
    assert missing_group.value.field == "window.group"
    with pytest.raises(InvalidInput, match="'nope'") as missing_column:
        build([("c", WindowSpec(group=name, column="nope", function="max", duration="1h"))])
    assert missing_column.value.field == "window.column"
    with pytest.raises(InvalidInput, match="numeric") as not_numeric:
        build([("c", WindowSpec(group=name, column="s", function="mean", duration="1h"))])
    assert not_numeric.value.field == "window.column"
    with pytest.raises(InvalidInput, match="'c'") as twice:
        build([("c", count), ("c", count)])
    assert twice.value.field == "windows"
    with pytest.raises(InvalidInput, match="'label'") as passthrough:
        build([("label", count)])
    assert passthrough.value.field == "windows"
    with pytest.raises(InvalidInput, match="'x'") as stored:
        build([("x", count)], [f"{name}:x"])
    assert stored.value.field == "windows"
    with pytest.raises(InvalidInput) as bad_name:
        build([("no spaces", count)])
    assert bad_name.value.field == "windows"
    with pytest.raises(InvalidInput, match="at least one feature"):
        build([])
    with pytest.raises(InvalidInput, match="record identifier") as no_key:
        build_training_set(
            fs.offline, groups, table.drop_columns(["k"]), [], windows=[("c", count)]
        )
    assert no_key.value.field == "k"
    online_only = fs.create_group(
        {
            "name": f"live-{next(_names)}",
            "record_identifiers": [{"name": "k"}],
            "features": [{"name": "x", "type": "float"}],
            "offline": False,
        }
    ).spec
    with pytest.raises(InvalidInput, match="no offline data") as not_offline:
        build_training_set(
            fs.offline,
            {online_only.name: online_only},
            table,
            [],
            windows=[("c", WindowSpec(group=online_only.name, function="count", duration="1h"))],
        )
    assert not_offline.value.field == "window.group"
    with pytest.raises(ValueError, match="positive"):
        WindowSpec(group=name, function="count", duration="0s")


# -- performance probe (prints, asserts nothing about time) -------------------------------


@pytest.mark.slow
def test_performance_probe_one_million_events(
    services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    """1M events of 10k keys over 30 days, 100k entity rows, counts and means over 1h,
    24h and 7d: the time of each plan, printed for the record."""
    fs = services.features
    group = fs.create_group(
        {
            "name": f"probe-{next(_names)}",
            "record_identifiers": [{"name": "user", "type": "int"}],
            "features": [{"name": "amount", "type": "float"}],
            "online": False,
        }
    ).spec
    rng = np.random.default_rng(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    span = 30 * 86_400 * 1_000_000
    origin = int(start.timestamp() * 1_000_000)
    events = pa.table(
        {
            "user": rng.integers(0, 10_000, 1_000_000),
            "event_time": pa.array(origin + rng.integers(0, span, 1_000_000), TIMESTAMP),
            "amount": rng.normal(size=1_000_000),
        }
    )
    fs.ingest(group.name, events)
    entities = pa.table(
        {
            "user": rng.integers(0, 10_000, 100_000),
            "event_timestamp": pa.array(origin + rng.integers(0, span, 100_000), TIMESTAMP),
        }
    )
    windows = [
        (f"{f}_{d}", WindowSpec(group=group.name, column="amount", function=f, duration=d))
        for d in ("1h", "24h", "7d")
        for f in ("count", "mean")
    ]
    groups = {group.name: group}
    prepared = entities.append_column(ROW, pa.array(np.arange(100_000, dtype=np.int64)))
    timings = {}
    results = {}
    for method in ("sorted", "window", "join", "auto"):
        began = time.perf_counter()
        results[method] = window_columns(
            fs.offline,
            groups,
            prepared,
            windows,
            row_column=ROW,
            timestamp_column="event_timestamp",
            method=method,
        ).data
        timings[method] = time.perf_counter() - began
    began = time.perf_counter()
    build_training_set(fs.offline, groups, entities, [], windows=windows, as_known_at=True)
    timings["as known at"] = time.perf_counter() - began
    assert results["window"].equals(results["join"]) or all(
        np.allclose(
            results["window"][n].to_numpy(zero_copy_only=False).astype(float),
            results["join"][n].to_numpy(zero_copy_only=False).astype(float),
            equal_nan=True,
        )
        for n, _ in windows
    )
    with capsys.disabled():
        print(
            "\nwindows over 1M events x 100k entity rows:",
            {k: f"{v:.2f}s" for k, v in timings.items()},
        )
