"""Every route needs the right role; public routes are exactly the declared few."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from slipway.api import API_PREFIX
from slipway.api.app import PUBLIC_PATHS, ROUTERS
from slipway.api.auth import check_bind_safety
from slipway.core.errors import InvalidInput
from slipway.core.settings import ServerSettings
from slipway.services import Services
from tests.api.conftest import bearer
from tests.registry.logged import logged_run

ADMIN_PREFIXES = ("/api/v1/tokens", "/api/v1/settings")
AUDITOR_PREFIXES = ("/api/v1/audit",)  # the auditor's and the admin's, not every viewer's
# A workspace the viewer holds no role in (the calls name workspace "1").
NOT_GRANTED_PREFIXES = ("/api/v1/workspaces/",)


def _routes(*, read_only: bool | None = None) -> list[tuple[str, str]]:
    """(method, template) of every route of every router the app includes; with
    ``read_only`` only the POST routes that merely read (or only the others)."""
    return [
        (method, f"{API_PREFIX}{route.path}")
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        and (
            read_only is None
            or bool((route.openapi_extra or {}).get("x-slipway-read-only")) == read_only
        )
        for method in sorted(route.methods)
    ]


def _calls(_app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) for every non-public route, path parameters filled in."""
    return [
        (method, re.sub(r"\{[^}]+\}", "1", path))
        for method, path in _routes()
        if path not in PUBLIC_PATHS
    ]


def test_the_route_list_is_complete(client: TestClient) -> None:
    """Cross-check the enumeration against the generated OpenAPI document."""
    spec = client.get("/api/v1/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented == set(_routes())
    assert len(_calls(client.app)) >= 8  # type: ignore[arg-type]


def test_every_route_refuses_a_missing_or_bad_token(client: TestClient, app: FastAPI) -> None:
    for method, path in _calls(app):
        for headers in ({}, bearer("slw_nope_nope"), {"Authorization": "Basic abc"}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "unauthorized"


def test_every_route_refuses_a_revoked_token(
    client: TestClient, app: FastAPI, tokens: dict[str, str]
) -> None:
    for method, path in _calls(app):
        response = client.request(method, path, headers=bearer(tokens["revoked"]))
        assert response.status_code == 401, (method, path)
        assert "revoked" in response.json()["error"]["message"]


def test_viewer_cannot_mutate_anything(
    client: TestClient, app: FastAPI, tokens: dict[str, str]
) -> None:
    reads = {re.sub(r"\{[^}]+\}", "1", p) for _, p in _routes(read_only=True)}
    mutations = [(m, p) for m, p in _calls(app) if m not in ("GET", "HEAD") and p not in reads]
    assert mutations
    for method, path in mutations:
        response = client.request(method, path, headers=bearer(tokens["viewer"]), json={})
        assert response.status_code == 403, (method, path, response.text)


def test_viewer_reads_and_editor_is_kept_from_admin_routes(
    client: TestClient, app: FastAPI, tokens: dict[str, str]
) -> None:
    for method, path in _calls(app):
        admin_only = path.startswith(ADMIN_PREFIXES)
        if method == "GET":
            response = client.get(path, headers=bearer(tokens["viewer"]))
            expected_denied = admin_only or path.startswith(AUDITOR_PREFIXES + NOT_GRANTED_PREFIXES)
            assert (response.status_code == 403) == expected_denied, (path, response.text)
        if admin_only:
            response = client.request(method, path, headers=bearer(tokens["editor"]), json={})
            assert response.status_code == 403, (method, path)


def test_public_routes_answer_without_a_token(client: TestClient) -> None:
    assert client.get("/api/v1/health/live").json() == {"status": "ok"}
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/tokens" in spec["paths"]


def test_token_lifecycle_over_rest(
    client: TestClient, services: Services, tokens: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/tokens", json={"name": "ci-bot", "role": "editor"}, headers=bearer(tokens["admin"])
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    assert client.get("/api/v1/models", headers=bearer(secret)).status_code == 200
    listed = client.get("/api/v1/tokens", headers=bearer(tokens["admin"])).json()
    assert "ci-bot" in {t["name"] for t in listed}
    assert all("token" not in t and "secret_hash" not in t for t in listed)
    revoked = client.delete(
        f"/api/v1/tokens/{created.json()['id']}", headers=bearer(tokens["admin"])
    )
    assert revoked.status_code == 200
    assert client.get("/api/v1/models", headers=bearer(secret)).status_code == 401


def test_tokens_are_stored_hashed(services: Services) -> None:
    _, secret = services.tokens.create("hashed", "viewer", created_by="t")
    with services.db.engine.connect() as conn:
        stored = [
            str(v) for row in conn.exec_driver_sql("SELECT * FROM slipway_api_tokens") for v in row
        ]
    # slw_<id>_<random>: the random part may itself contain "_" (URL-safe base64), so
    # split twice from the left; a short tail after its last "_" could match anything.
    random_part = secret.split("_", 2)[2]
    assert len(random_part) >= 40
    assert not any(random_part in value for value in stored)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_binding_beyond_loopback_without_auth_is_refused(host: str) -> None:
    with pytest.raises(InvalidInput, match="without authentication"):
        check_bind_safety(ServerSettings(host=host, auth=False))
    check_bind_safety(ServerSettings(host=host, auth=True))
    check_bind_safety(ServerSettings(host="127.0.0.1", auth=False))


# -- segregation of duties ----------------------------------------------------------------


def test_roles_divide_the_duties(
    client: TestClient, services: Services, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Who registers does not approve; approving and deploying are roles of their own;
    the audit log is the auditor's."""
    made = {
        role: services.tokens.create(f"sod-{role}", role, created_by="test")[1]
        for role in ("approver", "deployer", "auditor")
    }
    author = tokens["editor"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", services.registry.mlflow.uri)
    run_id = logged_run(services)
    registered = client.post(
        "/api/v1/models/sod/versions",
        json={"source": f"runs:/{run_id}/model"},
        headers=bearer(author),
    )
    assert registered.status_code == 201, registered.text
    approval = "/api/v1/models/sod/versions/1/approval"
    approve = {"status": "Approved", "comment": "looks good"}
    # The editor who registered it cannot approve it (not an approver, nor another person).
    assert client.post(approval, json=approve, headers=bearer(author)).status_code == 403
    assert client.post(approval, json=approve, headers=bearer(made["deployer"])).status_code == 403
    approved = client.post(approval, json=approve, headers=bearer(made["approver"]))
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval_status"] == "Approved"
    alias = "/api/v1/models/sod/aliases/champion"
    for who in (author, made["approver"]):
        assert client.put(alias, json={"version": 1}, headers=bearer(who)).status_code == 403
    assert (
        client.put(alias, json={"version": 1}, headers=bearer(made["deployer"])).status_code == 200
    )
    for who in (tokens["viewer"], author, made["approver"], made["deployer"]):
        assert client.get("/api/v1/audit", headers=bearer(who)).status_code == 403
    for who in (made["auditor"], tokens["admin"]):
        assert client.get("/api/v1/audit", headers=bearer(who)).status_code == 200
    # An auditor reads the platform but changes nothing.
    assert client.get("/api/v1/models", headers=bearer(made["auditor"])).status_code == 200
    assert client.post(approval, json=approve, headers=bearer(made["auditor"])).status_code == 403


def test_an_admin_who_registered_a_version_may_not_approve_it_either(
    client: TestClient, services: Services, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", services.registry.mlflow.uri)
    run_id = logged_run(services)
    admin = bearer(tokens["admin"])
    client.post(
        "/api/v1/models/own/versions", json={"source": f"runs:/{run_id}/model"}, headers=admin
    )
    refused = client.post(
        "/api/v1/models/own/versions/1/approval", json={"status": "Approved"}, headers=admin
    )
    assert refused.status_code == 403
    assert "segregation of duties" in refused.json()["error"]["message"]
    # Rejecting one's own version is always allowed; so is approving with the policy off.
    services.settings.registry.allow_self_approval = True
    try:
        allowed = client.post(
            "/api/v1/models/own/versions/1/approval", json={"status": "Approved"}, headers=admin
        )
        assert allowed.status_code == 200, allowed.text
    finally:
        services.settings.registry.allow_self_approval = False
