"""Feature views through slipway.Client and embedded, on one platform: the same
definitions, versions, online values and training sets (data and definition, which names
the view's version), and the same errors. The training-set route itself (a viewer may
read it, bodies of another type or past the table limit refused) on an app in process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.arrowipc import ARROW_STREAM, from_ipc, to_ipc
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.core.settings import load_settings
from slipway.features.offline.training import DEFINITION_HEADER, TrainingSet
from slipway.features.views.resources import FeatureView
from slipway.services import Services
from tests.shared_platform import SharedPlatform

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def test_define_version_and_read_online(
    platform: Any, shared_platform: SharedPlatform, side: str
) -> None:
    group, name = f"fv-trips-{side}", f"fv-rider-{side}"
    shared_platform.services.features.create_group(
        {
            "name": group,
            "record_identifiers": [{"name": "rider_id"}],
            "features": [{"name": "fare", "type": "float"}],
        }
    )
    shared_platform.services.features.ingest(
        group,
        pd.DataFrame(
            {
                "rider_id": ["a", "a", "b"],
                "event_time": [T0, T0 + timedelta(minutes=30), T0],
                "fare": [10.0, 20.0, 5.0],
            }
        ),
    )
    spec = {
        "name": name,
        "request_fields": {"distance": "float"},
        "transformations": [
            {"name": "n_1h", "window": {"group": group, "function": "count", "duration": "1h"}},
            {
                "name": "fare_sum",
                "window": {"group": group, "column": "fare", "function": "sum", "duration": "1d"},
            },
            {"name": "per_km", "expression": "fare_sum / distance", "type": "float"},
        ],
    }
    views = platform.feature_views
    first = views.apply(spec, actor="tests")
    assert isinstance(first, FeatureView) and first.version == 1
    assert first.columns == {"n_1h": "int", "fare_sum": "float", "per_km": "float"}
    assert views.apply(spec).version == 1
    assert views.apply({**spec, "description": "recent trips"}).version == 2
    assert isinstance(views.list(), Listing) and name in [v.name for v in views.list()]
    assert [v.version for v in views.versions(name)] == [1, 2]
    rows = [{"rider_id": "a", "distance": 2.0}, {"rider_id": "b", "distance": 5.0}]
    assert views.get_online(name, rows, at=T0 + timedelta(minutes=45)) == [
        {"n_1h": 2, "fare_sum": 30.0, "per_km": 15.0},
        {"n_1h": 1, "fare_sum": 5.0, "per_km": 1.0},
    ]
    with pytest.raises(InvalidInput) as caught:
        views.get_online(name, [{"rider_id": "a"}], at=T0)
    assert caught.value.field == "distance"
    with pytest.raises(InvalidInput) as caught:
        views.apply(
            {
                **spec,
                "transformations": [
                    {
                        "name": "x",
                        "window": {"group": "nowhere", "function": "count", "duration": "1h"},
                    }
                ],
            }
        )
    assert caught.value.field == "transformations.0.window.group"
    views.delete(name)
    with pytest.raises(NotFound):
        views.get(name)


def _rider_view(services: Services, side: str, suffix: str) -> dict[str, Any]:
    """Two groups with data (riders' ages, trips' fares) and a view over them reading a
    stored feature, two windows, a request field and two row-level expressions."""
    riders, trips = f"fvt-riders-{side}-{suffix}", f"fvt-trips-{side}-{suffix}"
    services.features.create_group(
        {
            "name": riders,
            "record_identifiers": [{"name": "rider_id"}],
            "features": [{"name": "age", "type": "int"}],
        }
    )
    services.features.create_group(
        {
            "name": trips,
            "record_identifiers": [{"name": "rider_id"}],
            "features": [{"name": "fare", "type": "float"}],
        }
    )
    services.features.ingest(
        riders, pd.DataFrame({"rider_id": ["a", "b"], "event_time": [T0, T0], "age": [30, 65]})
    )
    services.features.ingest(
        trips,
        pd.DataFrame(
            {
                "rider_id": ["a", "a", "a", "b"],
                "event_time": [T0, T0 + timedelta(minutes=30), T0 + timedelta(hours=2), T0],
                "fare": [10.0, 20.0, 30.0, 5.0],
            }
        ),
    )
    return {
        "name": f"fvt-rider-{side}-{suffix}",
        "features": [f"{riders}:age"],
        "request_fields": {"distance": "float"},
        "transformations": [
            {"name": "n_1h", "window": {"group": trips, "function": "count", "duration": "1h"}},
            {
                "name": "fare_sum",
                "window": {"group": trips, "column": "fare", "function": "sum", "duration": "1d"},
            },
            {"name": "senior", "expression": "age >= 60", "type": "bool"},
            {"name": "per_km", "expression": "fare_sum / distance", "type": "float"},
        ],
    }


def _entities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rider_id": ["a", "b", "a", "zz"],
            "event_timestamp": [
                T0 + timedelta(minutes=45),
                T0 + timedelta(minutes=45),
                T0 + timedelta(hours=2, minutes=10),
                T0 + timedelta(hours=1),
            ],
            "distance": [2.0, 5.0, 4.0, 1.0],
            "label": [1, 0, 1, 0],
        }
    )


def test_a_training_set_equals_the_embedded_one(
    platform: Any, shared_platform: SharedPlatform, side: str
) -> None:
    embedded = shared_platform.services.feature_views
    spec = _rider_view(shared_platform.services, side, "same")
    name = spec["name"]
    first = platform.feature_views.apply(spec)
    built = platform.feature_views.training_set(name, _entities())
    assert isinstance(built, TrainingSet)
    assert built.data.select(["rider_id", "label", "age", "n_1h", "fare_sum"]).to_pylist() == [
        {"rider_id": "a", "label": 1, "age": 30, "n_1h": 2, "fare_sum": 30.0},
        {"rider_id": "b", "label": 0, "age": 65, "n_1h": 1, "fare_sum": 5.0},
        {"rider_id": "a", "label": 1, "age": 30, "n_1h": 1, "fare_sum": 60.0},
        {"rider_id": "zz", "label": 0, "age": None, "n_1h": 0, "fare_sum": None},
    ]
    assert built.data.column("senior").to_pylist() == [False, True, False, None]
    assert built.data.column("per_km").to_pylist() == [15.0, 1.0, 15.0, None]
    local = embedded.training_set(name, _entities())
    assert built.data.schema == local.data.schema  # type for type
    assert built.data.equals(local.data)  # row for row
    assert built.definition == local.definition
    assert built.definition.feature_view == {"name": name, "version": 1, "digest": first.digest}

    # A later version changes the columns; version=1 still reads the first definition.
    changed = {**spec, "transformations": [*spec["transformations"][:3]]}
    assert platform.feature_views.apply(changed).version == 2
    latest = platform.feature_views.training_set(name, _entities())
    assert "per_km" not in latest.data.column_names
    assert latest.definition.feature_view is not None
    assert latest.definition.feature_view["version"] == 2
    pinned = platform.feature_views.training_set(name, _entities(), version=1)
    assert pinned.data.equals(built.data) and pinned.definition == built.definition

    # As known at: every record was ingested now, long after the rows' 2026-02 times, so
    # none was knowable then: no stored value and no window event counts.
    entities = _entities().rename(columns={"event_timestamp": "at"})
    known = platform.feature_views.training_set(
        name, entities, timestamp_column="at", as_known_at=True
    )
    assert known.definition.as_known_at and known.definition.timestamp_column == "at"
    assert known.data.column("age").to_pylist() == [None] * 4
    assert known.data.column("n_1h").to_pylist() == [0] * 4
    local_known = embedded.training_set(name, entities, timestamp_column="at", as_known_at=True)
    assert known.data.equals(local_known.data) and known.definition == local_known.definition


def _raised(views: Any, name: str, entities: Any, **arguments: Any) -> InvalidInput | NotFound:
    with pytest.raises((InvalidInput, NotFound)) as caught:
        views.training_set(name, entities, **arguments)
    assert isinstance(caught.value, InvalidInput | NotFound)
    return caught.value


def test_training_set_errors_are_the_embedded_ones(
    platform: Any, shared_platform: SharedPlatform, side: str
) -> None:
    embedded = shared_platform.services.feature_views
    spec = _rider_view(shared_platform.services, side, "errors")
    name = spec["name"]
    platform.feature_views.apply(spec)
    no_timestamp = _entities().drop(columns=["event_timestamp"])
    no_distance = _entities().drop(columns=["distance"])
    cases: list[tuple[str, dict[str, Any], type[Exception], str | None]] = [
        ("nowhere", {"entities": _entities()}, NotFound, None),
        (name, {"entities": _entities(), "version": 9}, NotFound, None),
        (name, {"entities": no_timestamp}, InvalidInput, "timestamp_column"),
        (name, {"entities": no_distance}, InvalidInput, "distance"),
        (name, {"entities": _entities().drop(columns=["rider_id"])}, InvalidInput, "rider_id"),
        (name, {"entities": "entities.parquet"}, InvalidInput, "records"),
    ]
    for view, arguments, error, field in cases:
        entities = arguments.pop("entities")
        here = _raised(platform.feature_views, view, entities, **arguments)
        there = _raised(embedded, view, entities, **arguments)
        assert type(here) is type(there) is error, (view, arguments)
        assert here.message == there.message
        if field is not None:
            assert isinstance(here, InvalidInput) and here.field == field


@pytest.fixture
def small_tables(tmp_path: Path) -> Iterator[tuple[TestClient, str, dict[str, Any]]]:
    """A control plane in process whose table bodies may hold at most 64 KiB, a viewer's
    token, and a view defined on it."""
    settings = load_settings(
        home=tmp_path / "home", server={"auth": True, "max_table_bytes": 64 * 1024}
    )
    services = Services.open(settings)
    spec = _rider_view(services, "app", "limits")
    services.feature_views.apply(spec)
    viewer = services.tokens.create("a-viewer", "viewer", created_by="tests")[1]
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield client, viewer, spec
    finally:
        services.close()


def test_the_route_is_a_read_bounded_by_the_table_limit(
    small_tables: tuple[TestClient, str, dict[str, Any]],
) -> None:
    client, viewer, spec = small_tables
    url = f"/api/v1/feature-views/{spec['name']}/training-set"
    auth = {"Authorization": f"Bearer {viewer}"}
    table = pa.Table.from_pandas(_entities(), preserve_index=False)
    answer = client.post(
        url,
        content=to_ipc(table).to_pybytes(),
        params={"version": 1},
        headers=auth | {"Content-Type": ARROW_STREAM},
    )
    assert answer.status_code == 200, answer.text  # a viewer may read it
    assert answer.headers["content-type"] == ARROW_STREAM
    assert from_ipc(answer.content).column("n_1h").to_pylist() == [2, 1, 1, 0]
    assert '"version": 1' in answer.headers[DEFINITION_HEADER]

    as_json = client.post(url, json=_entities().astype(str).to_dict("records"), headers=auth)
    assert as_json.status_code == 415
    assert as_json.json()["error"]["code"] == "unsupported_media_type"

    rows = 20_000  # over 64 KiB as a stream, however compressed
    big = pa.table(
        {
            "rider_id": [f"r{i}" for i in range(rows)],
            "event_timestamp": pa.array([T0] * rows, pa.timestamp("us", tz="UTC")),
            "distance": [float(i) for i in range(rows)],
        }
    )
    too_big = client.post(
        url, content=to_ipc(big).to_pybytes(), headers=auth | {"Content-Type": ARROW_STREAM}
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"

    nobody = client.post(
        url, content=to_ipc(table).to_pybytes(), headers={"Content-Type": ARROW_STREAM}
    )
    assert nobody.status_code == 401
