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
