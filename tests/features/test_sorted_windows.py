"""The sorted plan of time windows (features/offline/sorted_windows.py) on the shapes that
take its less common paths, against the SQL window plan (which the pandas oracle of
test_windows_offline.py checks): identifiers that are not dense integers, two identifier
columns, times that need ranking to fit one int64 with the keys, pairs ingested twice,
and NaN among the values of a min/max."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from slipway.core.settings import load_settings
from slipway.features.definitions import FeatureGroup
from slipway.features.offline.sorted_windows import sorted_windows
from slipway.features.offline.windows import window_columns
from slipway.features.store import FeatureStore
from slipway.features.validation import TIMESTAMP
from slipway.features.views.spec import WindowSpec
from slipway.services import Services

ROW = "__slipway_row"
FUNCTIONS = [
    ("count", None),
    ("sum", "x"),
    ("mean", "n"),
    ("min", "x"),
    ("max", "s"),
    ("last", "x"),
]
_names = itertools.count()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    opened = Services.open(load_settings(home=tmp_path_factory.mktemp("sorted") / "home"))
    yield opened
    opened.close()


def _group(fs: FeatureStore, keys: list[dict[str, str]]) -> FeatureGroup:
    return fs.create_group(
        {
            "name": f"shape-{next(_names)}",
            "record_identifiers": keys,
            "features": [
                {"name": "x", "type": "float"},
                {"name": "n", "type": "int"},
                {"name": "s", "type": "string"},
            ],
            "online": False,
        }
    ).spec


def _windows(group: str, durations: list[str]) -> list[tuple[str, WindowSpec]]:
    return [
        (f"{f}_{c or 'events'}_{d}", WindowSpec(group=group, column=c, function=f, duration=d))
        for (f, c), d in itertools.product(FUNCTIONS, durations)
    ]


def _events(rng: np.random.Generator, keys: dict[str, list[object]], times: np.ndarray) -> pa.Table:
    count = len(times)
    x = rng.normal(size=count)
    n = rng.integers(-50, 50, count)
    s = rng.choice(["p", "q", "r", "ß", "a"], count)
    columns: dict[str, object] = {name: values for name, values in keys.items()}
    columns["event_time"] = pa.array(times, TIMESTAMP)
    columns["x"] = pa.array(x, mask=rng.random(count) < 0.1)
    columns["n"] = pa.array(n, mask=rng.random(count) < 0.1)
    columns["s"] = pa.array(s.tolist(), mask=rng.random(count) < 0.1)
    return pa.table(columns)


def _both_plans(
    fs: FeatureStore,
    group: FeatureGroup,
    entities: pa.Table,
    windows: list[tuple[str, WindowSpec]],
) -> None:
    prepared = entities.append_column(ROW, pa.array(np.arange(entities.num_rows, dtype=np.int64)))
    results = {
        method: window_columns(
            fs.offline,
            {group.name: group},
            prepared,
            windows,
            row_column=ROW,
            timestamp_column="event_timestamp",
            method=method,  # type: ignore[arg-type]
        ).data
        for method in ("sorted", "window")
    }
    for name, _ in windows:
        got = results["sorted"][name].to_pylist()
        want = results["window"][name].to_pylist()
        assert (
            results["sorted"].schema.field(name).type == results["window"].schema.field(name).type
        )
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if isinstance(w, float):
                assert g is not None and math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12), (
                    name,
                    i,
                    g,
                    w,
                )
            else:
                assert g == w, (name, i, g, w)
    assert any(v for v in results["sorted"][windows[0][0]].to_pylist()), "no window saw events"


def test_sparse_integer_identifiers_two_ingestions_of_the_same_pairs(services: Services) -> None:
    """Identifiers far apart (coded through a dictionary, not by value) and a second
    ingestion correcting half of the first's pairs: each pair counts once, latest wins."""
    fs = services.features
    group = _group(fs, [{"name": "k", "type": "int"}])
    rng = np.random.default_rng(1)
    origin = np.int64(1_700_000_000_000_000)
    keys = rng.choice([-(2**62), -5, 0, 7, 2**40, 2**62], 3000).tolist()
    times = origin + rng.integers(0, 10 * 3_600_000_000, 3000)
    first = _events(rng, {"k": keys}, times)
    fs.ingest(group.name, first)
    corrections = _events(rng, {"k": keys[:1500]}, times[:1500])
    fs.ingest(group.name, corrections)
    entities = pa.table(
        {
            "k": rng.choice([-(2**62), -5, 0, 7, 2**40, 2**62, 3], 500).tolist(),
            "event_timestamp": pa.array(
                origin + rng.integers(0, 12 * 3_600_000_000, 500), TIMESTAMP
            ),
        }
    )
    _both_plans(fs, group, entities, _windows(group.name, ["10m", "2h"]))


def test_two_identifier_columns(services: Services) -> None:
    fs = services.features
    group = _group(fs, [{"name": "city", "type": "string"}, {"name": "zone", "type": "int"}])
    rng = np.random.default_rng(2)
    origin = np.int64(1_700_000_000_000_000)
    cities = rng.choice(["lisbon", "oslo", "quito"], 4000).tolist()
    zones = rng.integers(0, 20, 4000).tolist()
    fs.ingest(
        group.name,
        _events(
            rng, {"city": cities, "zone": zones}, origin + rng.integers(0, 86_400_000_000, 4000)
        ),
    )
    entities = pa.table(
        {
            "city": rng.choice(["lisbon", "oslo", "quito", "paris"], 600).tolist(),
            "zone": rng.integers(0, 22, 600).tolist(),
            "event_timestamp": pa.array(origin + rng.integers(0, 86_400_000_000, 600), TIMESTAMP),
        }
    )
    _both_plans(fs, group, entities, _windows(group.name, ["30m", "6h"]))


def test_times_over_centuries_with_many_keys_are_ranked(services: Services) -> None:
    """Keys needing 13 bits and times from 1971 to 2150 (52 bits of microseconds) do not
    fit one int64 code together: the plan ranks the times it compares instead."""
    fs = services.features
    group = _group(fs, [{"name": "k", "type": "int"}])
    rng = np.random.default_rng(3)
    low = int(datetime(1971, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    high = int(datetime(2150, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    keys = rng.integers(0, 6000, 5000).tolist()
    times = rng.integers(low, high, 5000)
    # Half the events close to another, so the windows are not all empty.
    times[2500:] = times[:2500] + rng.integers(-86_400_000_000, 86_400_000_000, 2500)
    fs.ingest(group.name, _events(rng, {"k": keys[:2500] * 2}, times))
    entities = pa.table(
        {
            "k": (keys[:2500] * 2)[:800],
            "event_timestamp": pa.array(times[:800] + 3_600_000_000, TIMESTAMP),
        }
    )
    _both_plans(fs, group, entities, _windows(group.name, ["2h", "3d"]))


def test_nan_is_above_every_number_in_min_and_max() -> None:
    """Ingestion stores NaN as null, but a table written otherwise may hold NaN: min and
    max then order it as DuckDB and Arrow do, above every number."""
    group = FeatureGroup.model_validate(
        {
            "name": "nan",
            "record_identifiers": [{"name": "k", "type": "int"}],
            "features": [{"name": "x", "type": "float"}],
        }
    )
    at = datetime(2025, 1, 1, tzinfo=UTC)
    events = pa.table(
        {
            "k": [1, 1, 1, 2, 2],
            "event_time": pa.array(
                [at, at + timedelta(minutes=1), at + timedelta(minutes=2), at, at], TIMESTAMP
            )[:5],
            "_ingest_id": [1, 1, 1, 1, 2],
            "x": pa.array([3.0, math.nan, -1.0, math.nan, None], pa.float64()),
        }
    )
    entities = pa.table(
        {
            "k": [1, 1, 2, 3],
            "event_timestamp": pa.array([at + timedelta(minutes=2), at, at, at], TIMESTAMP),
        }
    )
    specs = [WindowSpec(group="nan", column="x", function=f, duration="1h") for f in ("min", "max")]
    low, high = sorted_windows(events, group, entities, specs, timestamp_column="event_timestamp")
    assert low.to_pylist() == [-1.0, 3.0, None, None]  # key 2: its one pair's latest is null
    assert [v if v is None or not math.isnan(v) else "nan" for v in high.to_pylist()] == [
        "nan",
        3.0,
        None,
        None,
    ]
