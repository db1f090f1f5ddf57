"""Bad input gets a clear JSON error with the right status, never a 500; mutations are audited."""

from __future__ import annotations

from collections.abc import Iterator

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
    entries = client.get("/api/v1/audit", headers=bearer(tokens["viewer"])).json()
    summary = [(e["actor"], e["action"], e["outcome"], e["status_code"]) for e in entries]
    assert summary[:3] == [
        ("unauthenticated", "POST /api/v1/tokens", "denied", 401),
        ("t-viewer", "POST /api/v1/tokens", "denied", 403),
        ("t-admin", "POST /api/v1/tokens", "success", 201),
    ]
    assert all(e["time"].endswith("Z") or "+00:00" in e["time"] for e in entries)
    reads = [e for e in services.audit.list() if e.action.startswith("GET")]
    assert reads == []
