"""Feature groups over REST: the happy path and every kind of bad input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.core.arrowipc import ARROW_STREAM, from_ipc
from tests.api.conftest import bearer

GROUP: dict[str, Any] = {
    "name": "weather",
    "record_identifiers": [{"name": "origin"}],
    "event_time": "time_hour",
    "features": [{"name": "temp", "type": "float"}, {"name": "wind", "type": "int"}],
}


def _setup(client: TestClient, token: str) -> None:
    response = client.post("/api/v1/feature-groups", json=GROUP, headers=bearer(token))
    assert response.status_code == 201, response.text


def test_put_records_lookup_and_online_features(client: TestClient, tokens: dict[str, str]) -> None:
    editor, viewer = bearer(tokens["editor"]), bearer(tokens["viewer"])
    _setup(client, tokens["editor"])
    put = client.post(
        "/api/v1/feature-groups/weather/records",
        json={
            "records": [
                {"origin": "JFK", "time_hour": "2024-01-01T10:00:00Z", "temp": 3.5, "wind": 7}
            ]
        },
        headers=editor,
    )
    assert put.status_code == 201 and put.json()["rows"] == 1
    found = client.post(
        "/api/v1/feature-groups/weather/lookup", json={"keys": ["JFK", "LGA"]}, headers=viewer
    ).json()["records"]
    assert found[0]["values"] == {"temp": 3.5, "wind": 7} and found[1] is None
    vectors = client.post(
        "/api/v1/online-features",
        json={"feature_refs": ["weather:temp"], "entity_rows": [{"origin": "JFK"}]},
        headers=viewer,
    ).json()["vectors"]
    assert vectors == [{"values": {"temp": 3.5}, "missing": [], "stale": []}]
    described = client.get("/api/v1/feature-groups/weather", headers=viewer).json()
    assert described["online_records"] == 1 and described["offline_version"] == 0
    rows = client.post(
        "/api/v1/feature-groups/query",
        json={"sql": "SELECT origin, temp FROM weather"},
        headers=viewer,
    ).json()
    assert rows["rows"] == [{"origin": "JFK", "temp": 3.5}]
    ingests = client.get("/api/v1/feature-groups/weather/ingests", headers=viewer).json()
    assert ingests[0]["stats"]["features"]["temp"]["max"] == 3.5
    deleted = client.post(
        "/api/v1/feature-groups/weather/records/delete", json={"keys": ["JFK"]}, headers=editor
    ).json()
    assert deleted["online_deleted"] == 1
    audit = client.get("/api/v1/audit", headers=bearer(tokens["admin"])).json()
    actions = [e["action"] for e in audit]
    assert "feature_group.delete_records" in actions
    assert not any("lookup" in a or "online-features" in a for a in actions)  # reads not audited


def test_bad_rows_are_400_naming_column_and_row(client: TestClient, tokens: dict[str, str]) -> None:
    _setup(client, tokens["editor"])
    response = client.post(
        "/api/v1/feature-groups/weather/records",
        json={
            "records": [
                {"origin": "JFK", "time_hour": "2024-01-01T10:00:00Z", "temp": 1.0, "wind": 1},
                {"origin": "LGA", "time_hour": "2024-01-01T10:00:00Z", "temp": "warm", "wind": 1},
            ]
        },
        headers=bearer(tokens["editor"]),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"]["field"] == "temp"
    assert error["details"]["problems"][0]["rows"] == [1]
    lookup = client.post(
        "/api/v1/feature-groups/weather/lookup",
        json={"keys": ["JFK"]},
        headers=bearer(tokens["viewer"]),
    )
    assert lookup.json()["records"] == [None]  # nothing written


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"wind": 2**64}, "wind"),  # past int64: was an OverflowError, a 500
        ({"wind": -(2**70)}, "wind"),
        ({"": 1.0}, "records"),  # a column named "": named by its container
    ],
    ids=["int-past-int64", "int-below-int64", "column-named-empty"],
)
def test_values_pyarrow_cannot_hold_and_empty_names_are_400s(
    client: TestClient, tokens: dict[str, str], record: dict[str, Any], field: str
) -> None:
    """Found by tests/api/test_fuzz.py."""
    _setup(client, tokens["editor"])
    row = {"origin": "JFK", "time_hour": "2024-01-01T10:00:00Z", "temp": 1.0, "wind": 1}
    response = client.post(
        "/api/v1/feature-groups/weather/records",
        json={"records": [row | record]},
        headers=bearer(tokens["editor"]),
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["field"] == field
    lookup = client.post(
        "/api/v1/feature-groups/weather/lookup",
        json={"keys": ["JFK"]},
        headers=bearer(tokens["viewer"]),
    )
    assert lookup.json()["records"] == [None]  # nothing written


def test_unknown_group_bad_name_and_oversized_body(
    client: TestClient, tokens: dict[str, str]
) -> None:
    editor = bearer(tokens["editor"])
    missing = client.post(
        "/api/v1/feature-groups/nope/records", json={"records": [{"a": 1}]}, headers=editor
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/feature-groups/nope", headers=editor).status_code == 404
    bad = client.post("/api/v1/feature-groups", json=GROUP | {"name": "Bad Name"}, headers=editor)
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "name"
    _setup(client, tokens["editor"])
    again = client.post("/api/v1/feature-groups", json=GROUP, headers=editor)
    assert again.status_code == 409
    huge = {"records": [{"origin": "x" * 1000, "time_hour": "2024-01-01T00:00:00Z"}] * 20_000}
    too_big = client.post("/api/v1/feature-groups/weather/records", json=huge, headers=editor)
    assert too_big.status_code == 413
    too_many = client.post(
        "/api/v1/feature-groups/weather/records",
        json={"records": [{"origin": "x", "time_hour": "2024-01-01T00:00:00Z"}] * 10_001},
        headers=editor,
    )
    assert too_many.status_code == 400 and too_many.json()["error"]["details"]["field"] == "records"
    changed = GROUP | {"features": [{"name": "temp", "type": "string"}, GROUP["features"][1]]}
    conflict = client.put("/api/v1/feature-groups/weather", json=changed, headers=editor)
    assert (
        conflict.status_code == 409 and "new feature group" in conflict.json()["error"]["message"]
    )
    sql = client.post(
        "/api/v1/feature-groups/query", json={"sql": "DROP TABLE weather"}, headers=editor
    )
    assert sql.status_code == 400


def test_definitions_are_checked_by_the_server_itself(
    client: TestClient, tokens: dict[str, str]
) -> None:
    """The body is the FeatureGroup model: a client that skips validating it still gets a
    400 naming the field, and a PUT cannot rename the group."""
    editor = bearer(tokens["editor"])
    unknown = client.post("/api/v1/feature-groups", json=GROUP | {"colour": "red"}, headers=editor)
    assert unknown.status_code == 400 and unknown.json()["error"]["details"]["field"] == "colour"
    _setup(client, tokens["editor"])
    renamed = client.put(
        "/api/v1/feature-groups/weather", json=GROUP | {"name": "other"}, headers=editor
    )
    assert renamed.status_code == 400 and renamed.json()["error"]["details"]["field"] == "name"
    updated = client.put(
        "/api/v1/feature-groups/weather", json=GROUP | {"owner": "ops"}, headers=editor
    )
    assert updated.status_code == 200
    assert (updated.json()["revision"], updated.json()["definition"]["owner"]) == (2, "ops")


def test_tables_of_a_query_and_of_offline_rows_are_arrow(
    client: TestClient, tokens: dict[str, str]
) -> None:
    _setup(client, tokens["editor"])
    row = {"origin": "JFK", "time_hour": "2024-01-01T10:00:00Z", "temp": 3.5, "wind": 7}
    client.post(
        "/api/v1/feature-groups/weather/records",
        json={"records": [row]},
        headers=bearer(tokens["editor"]),
    )
    viewer = bearer(tokens["viewer"])
    answer = client.post(
        "/api/v1/feature-groups/query/arrow",
        json={"sql": "SELECT wind FROM weather"},
        headers=viewer,
    )
    assert answer.headers["content-type"] == ARROW_STREAM
    assert from_ipc(answer.content).to_pylist() == [{"wind": 7}]
    offline = client.get("/api/v1/feature-groups/weather/offline?version=0", headers=viewer)
    assert from_ipc(offline.content).column("temp").to_pylist() == [3.5]
    missing = client.get("/api/v1/feature-groups/nope/offline", headers=viewer)
    assert missing.status_code == 404
