"""A feature view read online after a random stream equals the training set at the
latest time, on SQLite and on Redis.

Each example is a random stream of micro-batches written the way streaming ingestion
writes them (:meth:`FeatureStore.ingest_stream_batch`), with late events (event times
before ones already ingested), corrections (the same key and event time again, the later
write winning), nulls, deletions of keys, and a view defined part-way (what came before
is backfilled from the offline store, what comes after is kept by ingestion). Then, at a
time at or after every event, every column of the view — stored features, every window
function over three durations whose edges fall on the event-time grid, and row-level
transformations over them and a request field — is read online and computed as a
training set, and the two must be equal: the same values, the same nulls, the same
types.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipway.core.settings import load_settings
from slipway.features.online.redis import RedisOnlineStore
from slipway.features.store import FeatureStore
from slipway.features.views.horizons import HorizonCache
from slipway.features.views.service import FeatureViews
from slipway.services import Services
from tests.conftest import service_url

KEYS = ["a", "b", "c"]
STEP = timedelta(minutes=10)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DURATIONS = ["10m", "30m", "1h"]
FUNCTIONS = [
    ("count", None),
    *((f, "x") for f in ("sum", "mean", "min", "max", "last")),
    *((f, "n") for f in ("sum", "min", "max", "last")),
    *((f, "s") for f in ("min", "max", "last")),
]


def _transformations(group: str) -> list[dict[str, Any]]:
    windows = [
        {
            "name": f"{function}_{column or 'events'}_{duration}",
            "window": {"group": group, "column": column, "function": function, "duration": duration}
            if column
            else {"group": group, "function": function, "duration": duration},
        }
        for (function, column), duration in itertools.product(FUNCTIONS, DURATIONS)
    ]
    rows = [
        {"name": "per_event", "expression": "sum_x_1h / (count_events_1h + 1)", "type": "float"},
        {"name": "rising", "expression": "last_x_10m > x", "type": "bool"},
        {"name": "scaled", "expression": "n * weight", "type": "float"},
    ]
    return windows + rows


@pytest.fixture(scope="module", params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def services(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    home: Path = tmp_path_factory.mktemp(f"identity-{request.param}") / "home"
    opened = Services.open(load_settings(home=home))
    if request.param == "redis":
        # Tests share one Redis server: this module's keys live under a prefix of its own.
        opened.online_store = RedisOnlineStore(
            service_url("redis"), prefix=f"t{uuid.uuid4().hex[:8]}"
        )
        opened.features = FeatureStore(
            opened.features.repo,
            opened.features.offline,
            opened.online_store,
            opened.events,
            opened.audit,
            horizons=HorizonCache,
        )
        opened.feature_views = FeatureViews(opened.db, opened.features, opened.events, opened.audit)
    yield opened
    opened.close()


_names = itertools.count()
_value = st.one_of(st.none(), st.integers(-20, 20))
# Strings whose UTF-8 bytes and code points order alike (DuckDB and Python agree).
_text = st.one_of(st.none(), st.sampled_from(["p", "Q", "é", "pq", "€", ""]))
# (key, slot on the event-time grid, x, n, s): one fact per (key, slot) within a batch; the
# same pair in a later batch is a correction, an earlier slot than already seen is late.
_batch = st.lists(
    st.tuples(st.sampled_from(KEYS), st.integers(0, 8), _value, _value, _text),
    min_size=1,
    max_size=8,
    unique_by=lambda e: (e[0], e[1]),
)
_step = st.one_of(
    _batch.map(lambda b: ("ingest", b)),
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True).map(
        lambda keys: ("delete", keys)
    ),
)


def _same(online: Any, offline: Any, where: str) -> None:
    if online is None or offline is None:
        assert online is None and offline is None, where
    elif isinstance(offline, float):
        assert isinstance(online, float), where
        # Sums may be added in another order on each path: equal to the last bits.
        assert math.isclose(online, offline, rel_tol=1e-12, abs_tol=1e-12), where
    else:
        assert online == offline and type(online) is type(offline), where


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # The first step writes: a training set of a group with no offline data is refused.
    steps=st.tuples(_batch.map(lambda b: ("ingest", b)), st.lists(_step, max_size=5)).map(
        lambda first_and_rest: [first_and_rest[0], *first_and_rest[1]]
    ),
    defined_after=st.integers(0, 6),
    after_last=st.sampled_from([timedelta(0), timedelta(microseconds=1), STEP / 2, 2 * STEP]),
)
def test_online_after_a_stream_equals_the_training_set_at_the_latest_time(
    services: Services,
    steps: list[tuple[str, Any]],
    defined_after: int,
    after_last: timedelta,
) -> None:
    fs = services.features
    number = next(_names)
    group = f"events-{number}"
    fs.create_group(
        {
            "name": group,
            "record_identifiers": [{"name": "k"}],
            "features": [
                {"name": "x", "type": "float"},
                {"name": "n", "type": "int"},
                {"name": "s", "type": "string"},
            ],
        }
    )
    view = {
        "name": f"view-{number}",
        "features": [f"{group}:x", f"{group}:n", f"{group}:s"],
        "request_fields": {"weight": "float"},
        "transformations": _transformations(group),
    }
    latest = T0
    for index, (kind, payload) in enumerate(steps):
        if index == defined_after:
            services.feature_views.apply(view)
        if kind == "delete":
            fs.delete_records(group, [{"k": k} for k in payload], actor="test")
            continue
        records = [
            {
                "k": k,
                "event_time": T0 + slot * STEP,
                "x": None if x is None else x / 4,
                "n": n,
                "s": text,
            }
            for k, slot, x, n, text in payload
        ]
        latest = max(latest, *(r["event_time"] for r in records))
        fs.ingest_stream_batch(group, records, source="property-test")
    if defined_after >= len(steps):
        services.feature_views.apply(view)

    at = latest + after_last
    keys = [*KEYS, "nobody"]
    requests = [{"k": k, "weight": 0.5} for k in keys]
    online = services.feature_views.get_online(view["name"], requests, at=at)
    entities = pd.DataFrame(
        {"k": keys, "event_timestamp": [at] * len(keys), "weight": [0.5] * len(keys)}
    )
    offline = services.feature_views.training_set(view["name"], entities).data
    columns = services.feature_views.get(view["name"]).columns
    assert set(online[0]) == set(columns)
    for name in columns:
        for row, key in enumerate(keys):
            _same(online[row][name], offline[name][row].as_py(), f"{name} of {key!r}")
