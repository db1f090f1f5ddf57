"""Feature views as a resource: defined against existing groups and features, versioned
(a changed definition is a new version, the same one again is not), every bad reference
a 400 naming its field with nothing written; over REST with the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.services import Services

GROUPS: list[dict[str, Any]] = [
    {
        "name": "riders",
        "record_identifiers": [{"name": "rider_id"}],
        "features": [{"name": "age", "type": "int"}, {"name": "rating", "type": "float"}],
    },
    {
        "name": "trips",
        "record_identifiers": [{"name": "rider_id"}],
        "features": [
            {"name": "fare", "type": "float"},
            {"name": "city", "type": "string"},
        ],
    },
]

VIEW: dict[str, Any] = {
    "name": "rider",
    "features": ["riders:age", "riders:rating"],
    "transformations": [
        {"name": "trips_1h", "window": {"group": "trips", "function": "count", "duration": "1h"}},
        {
            "name": "fare_mean_24h",
            "window": {"group": "trips", "column": "fare", "function": "mean", "duration": "24h"},
        },
        {
            "name": "last_city",
            "window": {"group": "trips", "column": "city", "function": "last", "duration": "7d"},
        },
    ],
}


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Services]:
    services = Services.open(load_settings(home=tmp_path / "home"))
    for group in GROUPS:
        services.features.create_group(group)
    yield services
    services.close()


def test_a_view_is_versioned_by_its_definition(platform: Services) -> None:
    views = platform.feature_views
    first = views.apply(VIEW, actor="ana")
    assert (first.name, first.version, first.created_by) == ("rider", 1, "ana")
    assert first.entity_keys == ["rider_id"]
    assert first.columns == {
        "age": "int",
        "rating": "float",
        "trips_1h": "int",
        "fare_mean_24h": "float",
        "last_city": "string",
    }
    assert first.spec.transformations[0].window is not None
    assert first.spec.transformations[0].window.duration.total_seconds() == 3600
    # The same definition again: the same version, nothing written.
    assert views.apply(VIEW).version == 1
    changed = views.apply({**VIEW, "description": "riders and their recent trips"})
    assert changed.version == 2 and changed.digest != first.digest
    assert views.get("rider").version == 2
    assert views.get("rider", 1).spec.description == ""
    assert [v.version for v in views.versions("rider")] == [1, 2]
    assert [v.name for v in views.list()] == ["rider"]
    actions = [e.action for e in platform.audit.list(limit=20)]
    assert actions.count("feature_view.create") == 1 and "feature_view.update" in actions
    views.delete("rider")
    with pytest.raises(NotFound):
        views.get("rider")


def _window(**overrides: Any) -> dict[str, Any]:
    base = {"group": "trips", "column": "fare", "function": "sum", "duration": "1h"}
    return {**VIEW, "transformations": [{"name": "w", "window": {**base, **overrides}}]}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({**VIEW, "features": ["nowhere:age"]}, "features.0"),
        ({**VIEW, "features": ["riders:age", "riders:height"]}, "features.1"),
        ({**VIEW, "features": ["riders"]}, "features.0"),
        (_window(group="nowhere"), "transformations.0.window.group"),
        (_window(column="distance"), "transformations.0.window.column"),
        (_window(column="city"), "transformations.0.window.column"),  # sum of strings
        (_window(column="city", function="mean"), "transformations.0.window.column"),
        (_window(duration="-1h"), "transformations.0.window.duration"),
        (_window(duration="0s"), "transformations.0.window.duration"),
        (_window(duration="soon"), "transformations.0.window.duration"),
        (_window(function="median"), "transformations.0.window.function"),
        ({**VIEW, "name": "Rider View"}, "name"),
        ({**VIEW, "extra": 1}, "extra"),
        (
            {**VIEW, "transformations": [{"name": "age", "expression": "1", "type": "int"}] * 2},
            "body",
        ),
    ],
)
def test_bad_definitions_name_the_field_and_write_nothing(
    platform: Services, spec: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        platform.feature_views.apply(spec)
    assert caught.value.field == field, caught.value.message
    assert platform.feature_views.list() == []


def test_min_and_max_of_strings_are_typed_as_strings(platform: Services) -> None:
    """Strings order the same way offline (DuckDB) and online (Python): min and max take
    them, and the column is a string."""
    spec = {
        **VIEW,
        "transformations": [
            {
                "name": "first_city",
                "window": {
                    **_window()["transformations"][0]["window"],
                    "column": "city",
                    "function": "min",
                },
            },
            {
                "name": "last_city",
                "window": {
                    **_window()["transformations"][0]["window"],
                    "column": "city",
                    "function": "max",
                },
            },
        ],
    }
    view = platform.feature_views.apply(spec)
    assert (view.columns["first_city"], view.columns["last_city"]) == ("string", "string")


def test_over_rest(platform: Services) -> None:
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        answer = client.put(
            "/api/v1/feature-views/rider", json={k: v for k, v in VIEW.items() if k != "name"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 1 and answer.json()["entity_keys"] == ["rider_id"]
        again = client.put("/api/v1/feature-views/rider", json=VIEW)
        assert again.json()["version"] == 1
        renamed = client.put("/api/v1/feature-views/rider", json={**VIEW, "name": "other"})
        assert renamed.status_code == 400
        assert renamed.json()["error"]["details"]["field"] == "name"
        bad = client.put("/api/v1/feature-views/rider", json=_window(column="distance"))
        assert bad.status_code == 400
        assert bad.json()["error"]["details"]["field"] == "transformations.0.window.column"
        assert client.get("/api/v1/feature-views/rider", params={"version": 2}).status_code == 404
        assert [
            v["version"] for v in client.get("/api/v1/feature-views/rider/versions").json()
        ] == [1]
        assert client.delete("/api/v1/feature-views/rider").status_code == 204
        assert client.get("/api/v1/feature-views").json() == []


def _rows(*transformations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**VIEW, "transformations": [*VIEW["transformations"], *transformations], **extra}


def test_row_level_transformations_are_typed_at_definition(platform: Services) -> None:
    view = platform.feature_views.apply(
        _rows(
            {"name": "rating_x2", "expression": "rating * 2", "type": "float"},
            {"name": "old", "expression": "age >= 60 and trips_1h > 0", "type": "bool"},
            {"name": "per_trip", "expression": "fare_mean_24h / distance", "type": "float"},
            request_fields={"distance": "float"},
        )
    )
    assert view.columns["rating_x2"] == "float" and view.columns["old"] == "bool"
    assert list(view.columns)[-3:] == ["rating_x2", "old", "per_trip"]
    assert platform.feature_views.get("rider").columns == view.columns


@pytest.mark.parametrize(
    ("transformation", "field"),
    [
        # A float declared int: the declared output type does not match what it returns.
        ({"name": "r", "expression": "rating * 2", "type": "int"}, "transformations.3.type"),
        (
            {"name": "r", "expression": "height * 2", "type": "float"},
            "transformations.3.expression",
        ),
        (
            {"name": "r", "expression": "__import__('os')", "type": "int"},
            "transformations.3.expression",
        ),
        (
            {"name": "r", "expression": "rating.real", "type": "float"},
            "transformations.3.expression",
        ),
        ({"name": "age", "expression": "rating + 1", "type": "float"}, "transformations.3.name"),
        (
            {
                "name": "r",
                "python": "no.such.module:f",
                "inputs": {"age": "int"},
                "outputs": {"r": "int"},
            },
            "transformations.3.python",
        ),
    ],
)
def test_bad_row_transformations_name_the_field(
    platform: Services, transformation: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        platform.feature_views.apply(_rows(transformation))
    assert caught.value.field == field, caught.value.message
    assert platform.feature_views.list() == []


def test_a_python_transformation_over_rest_must_come_from_an_allowed_module(
    platform: Services,
) -> None:
    spec = _rows(
        {
            "name": "age_bucket",
            "python": "tests.features.view_functions:age_bucket",
            "inputs": {"age": "int"},
            "outputs": {"age_bucket": "int"},
        }
    )
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        refused = client.put("/api/v1/feature-views/rider", json=spec)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["details"]["field"] == "transformations.3.python"
        assert client.get("/api/v1/feature-views").json() == []
    # In process (the machine's own user), the function is imported and checked.
    view = platform.feature_views.apply(spec)
    assert view.columns["age_bucket"] == "int"
