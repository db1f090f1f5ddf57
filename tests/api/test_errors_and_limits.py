"""Bad input gets a clear JSON error with the right status, never a 500; mutations are audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from slipway.api.limits import json_depth_exceeds
from slipway.services import Services
from tests.api.conftest import bearer


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_body_over_the_limit_is_413(client: TestClient, tokens: dict[str, str]) -> None:
    big = b"{" + b" " * (17 * 1024 * 1024) + b"}"
    response = client.post(
        "/api/v1/tokens",
        content=big,
        headers=bearer(tokens["admin"]) | {"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_streamed_body_over_the_limit_is_413(client: TestClient, tokens: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * (1024 * 1024)

    response = client.post(
        "/api/v1/tokens",
        content=chunks(),
        headers=bearer(tokens["admin"]) | {"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_deeply_nested_json_is_400_not_500(client: TestClient, tokens: dict[str, str]) -> None:
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000):
        response = client.post(
            "/api/v1/tokens",
            content=body,
            headers=bearer(tokens["admin"]) | {"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["details"]["field"] == "body"


def test_depth_scanner_ignores_brackets_in_strings() -> None:
    assert not json_depth_exceeds(b'{"a": "[[[[[[[[[[\\"[[[["}', 3)
    assert json_depth_exceeds(b"[[[[1]]]]", 3)
    assert not json_depth_exceeds(b"[[[1]]]", 3)


def test_validation_errors_name_the_field(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/tokens", json={"name": "x", "role": "god"}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["field"] == "role"

    response = client.post(
        "/api/v1/tokens", json={"name": "Not A Name"}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "name"

    response = client.post(
        "/api/v1/tokens",
        content=b"{not json",
        headers=bearer(tokens["admin"]) | {"content-type": "application/json"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("flag", ["yes", "false", 1, 0, None])
def test_a_flag_must_be_a_json_boolean(
    client: TestClient, services: Services, tokens: dict[str, str], flag: object
) -> None:
    """``"online": "false"`` would be read as False, and ``"yes"`` or ``1`` as True, by
    a lax parser: a request's flags are JSON booleans or refused, naming the field."""
    group = {
        "name": "strict_flags",
        "record_identifiers": [{"name": "k", "type": "string"}],
        "event_time": "t",
        "features": [{"name": "x", "type": "float"}],
        "online": flag,
    }
    response = client.post("/api/v1/feature-groups", json=group, headers=bearer(tokens["admin"]))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["field"] == "online"
    assert "strict_flags" not in [g.name for g in services.features.list_groups()]


def test_refused_input_writes_nothing(
    client: TestClient, services: Services, tokens: dict[str, str]
) -> None:
    before = len(services.tokens.list())
    client.post("/api/v1/tokens", json={"name": "BAD NAME"}, headers=bearer(tokens["admin"]))
    assert len(services.tokens.list()) == before


def test_mutations_are_audited_with_actor_and_outcome(
    client: TestClient, services: Services, tokens: dict[str, str]
) -> None:
    client.post("/api/v1/tokens", json={"name": "audited"}, headers=bearer(tokens["admin"]))
    client.post("/api/v1/tokens", json={"name": "denied"}, headers=bearer(tokens["viewer"]))
    client.post("/api/v1/tokens", json={"name": "anon"})
    # The log is the auditor's (and admin's) to read, not every viewer's.
    assert client.get("/api/v1/audit", headers=bearer(tokens["viewer"])).status_code == 403
    auditor = services.tokens.create("t-auditor", "auditor", created_by="test")[1]
    entries = client.get("/api/v1/audit", headers=bearer(auditor)).json()
    summary = [(e["actor"], e["action"], e["outcome"], e["status_code"]) for e in entries]
    assert [s for s in summary if s[1].startswith("POST ")][:3] == [
        ("unauthenticated", "POST /api/v1/tokens", "denied", 401),
        ("t-viewer", "POST /api/v1/tokens", "denied", 403),
        ("t-admin", "POST /api/v1/tokens", "success", 201),
    ]
    # The service's own entries: the one made over HTTP by its caller, the one in process
    # by whom it names; a refused request leaves none.
    created = [e for e in entries if e["action"] == "tokens.create"]
    assert [(e["actor"], e["details"]["name"]) for e in created][:2] == [
        ("test", "t-auditor"),
        ("t-admin", "audited"),
    ]
    assert all(e["time"].endswith("Z") or "+00:00" in e["time"] for e in entries)
    # Reads are not changes: only the refused one is in the log (who tried to read it).
    reads = [
        (e.actor, e.action, e.status_code)
        for e in services.audit.list()
        if e.action.startswith("GET")
    ]
    assert reads == [("t-viewer", "GET /api/v1/audit", 403)]


# -- found by tests/api/test_fuzz.py ------------------------------------------------------


def test_a_body_that_is_not_utf8_is_400_naming_the_body(
    client: TestClient, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/tokens",
        content=b"\xff\xfe\x00",
        headers=bearer(tokens["admin"]) | {"content-type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["details"]["field"] == "body"


@pytest.mark.parametrize("body", [b"\xff\xfe", b"{not json", b'{"name": 5}'])
def test_a_bad_body_from_an_anonymous_caller_is_401_not_400(
    client: TestClient, body: bytes
) -> None:
    """FastAPI parses a body before it runs the route's auth: the caller is judged first."""
    response = client.post(
        "/api/v1/tokens", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    revoked = client.post(
        "/api/v1/feature-groups",
        content=body,
        headers={"content-type": "application/json", "authorization": "Bearer slw_x_y"},
    )
    assert revoked.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/work/{n}",
        "/api/v1/events?after={n}",
        "/api/v1/executions/x/logs?after={n}",
        "/api/v1/jobs/x/logs?after={n}",
        "/api/v1/alerts/fired/{n}",
        "/api/v1/audit?before={n}",
        "/api/v1/monitor-runs/{n}",
        "/api/v1/monitor-runs/{n}/report",
        "/api/v1/endpoints/x/configs/{n}",
        "/api/v1/models/x/versions/{n}/approvals",
        "/api/v1/models/lineage/feature-groups/x?version={n}",
    ],
)
def test_integers_past_int64_are_400_naming_the_parameter(
    client: TestClient, tokens: dict[str, str], path: str
) -> None:
    """An id no database column holds was an OverflowError in the driver (a 500)."""
    response = client.get(path.format(n=2**63), headers=bearer(tokens["admin"]))
    assert response.status_code == 400, response.text
    where, _, name = response.json()["error"]["details"]["field"].partition(".")
    assert where in ("path", "query") and name in ("item_id", "after", "alert_id", "before",
                                                   "run_id", "version"), name  # fmt: skip


def test_the_openapi_document_describes_the_errors_sent(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    error = {"$ref": "#/components/schemas/Error"}
    tokens = document["paths"]["/api/v1/tokens"]["post"]["responses"]
    assert "422" not in tokens
    assert {"400", "401", "403", "409", "413", "503"} <= set(tokens)
    assert all(r["content"]["application/json"]["schema"] == error
               for status, r in tokens.items() if status >= "400")  # fmt: skip
    live = document["paths"]["/api/v1/health/live"]["get"]["responses"]
    assert "401" not in live and "403" not in live  # public
    describe = document["paths"]["/api/v1/feature-groups/{name}"]["get"]["responses"]
    assert "404" in describe and "409" not in describe
