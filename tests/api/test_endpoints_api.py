"""Serving endpoints over REST, on both engines, with real registered models.

No gateway runs here, so endpoints stay Creating (or go Deleting): what the control plane
does on its own. Rollouts to InService are covered by tests/serving.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.settings import load_settings
from slipway.registry.models import ApprovalStatus
from slipway.services import Services
from tests.api.conftest import bearer
from tests.registry.logged import register_classifier

URL = "/api/v1/endpoints"


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(home=tmp_path / "home", database={"url": database_url})
    opened = Services.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), raise_server_exceptions=False) as test_client:
        yield test_client


def spec(name: str = "churn", model: str = "churn:1", **extra: Any) -> dict[str, Any]:
    return {"name": name, "variants": [{"name": "main", "model": model}], **extra}


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_create_describe_history_and_delete(
    services: Services, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(services, monkeypatch, "churn")
    services.registry.set_alias("churn", "champion", 1, actor="test")
    created = client.post(URL, json=spec(model="churn@champion"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "Creating" and body["target_version"] == 1
    assert body["active_version"] is None and body["created_by"] == "anonymous"
    assert body["target"]["spec"]["variants"][0]["version"] == 1  # the alias, pinned

    described = client.get(f"{URL}/churn").json()
    assert described["status"] == "Creating" and described["target_version"] == 1
    assert described["traffic"] == {"main": 1.0} and described["gateways"] == []
    listed = client.get(URL).json()
    assert [(e["name"], e["status"], e["target_version"]) for e in listed] == [
        ("churn", "Creating", 1)
    ]
    history = client.get(f"{URL}/churn/history").json()
    assert [(c["version"], c["outcome"], c["rollback_of"]) for c in history] == [
        (1, "pending", None)
    ]
    config = client.get(f"{URL}/churn/configs/1").json()
    assert config["variants"][0]["model"] == "churn@champion"
    assert config["variants"][0]["version"] == 1 and config["environment"] == "staging"

    again = _error(client.post(URL, json=spec()), 409)
    assert "already exists" in again["message"]
    busy = _error(client.put(f"{URL}/churn", json=spec()), 409)
    assert busy["details"]["status"] == "Creating"
    _error(client.post(f"{URL}/churn/rollback", json={"to_version": None}), 409)
    assert [c["version"] for c in client.get(f"{URL}/churn/history").json()] == [1]

    deleted = client.delete(f"{URL}/churn")
    assert deleted.status_code == 202, deleted.text
    assert deleted.json() == {"name": "churn", "status": "Deleting"}
    assert client.get(f"{URL}/churn").json()["status"] == "Deleting"
    _error(client.put(f"{URL}/churn", json=spec()), 409)
    assert client.delete(f"{URL}/churn").status_code == 202  # deleting twice is harmless

    audit = [e["action"] for e in client.get("/api/v1/audit").json()]
    assert "endpoint.create" in audit and "endpoint.delete" in audit
    schema = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/endpoints", "/api/v1/endpoints/{name}/rollback"} <= set(schema["paths"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (spec() | {"variants": [{"name": "main", "model": "churn:1", "weight": -1}]},
         "variants.0.weight"),
        ({"name": "churn"}, "variants"),
        (spec() | {"variants": []}, "variants"),
        (spec() | {"replicas": 3}, "replicas"),
        (spec() | {"variants": [{"name": "main", "model": "churn:1", "gpu": 1}]},
         "variants.0.gpu"),
        (spec(model="churn"), "variants.0.model"),
        (spec(name="Not A Name"), "name"),
        (spec() | {"deployment": {"strategy": "yolo"}}, "deployment.strategy"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_a_400_naming_the_field_and_stores_nothing(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    error = _error(client.post(URL, json=body), 400)
    assert error["code"] == "invalid_input"
    assert error["details"]["field"] == field, error
    assert client.get(URL).json() == []


def test_unknown_endpoints_and_models_are_404(
    services: Services, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for method, path, body in [
        ("GET", f"{URL}/nope", None),
        ("GET", f"{URL}/nope/history", None),
        ("GET", f"{URL}/nope/configs/1", None),
        ("DELETE", f"{URL}/nope", None),
        ("POST", f"{URL}/nope/rollback", {"to_version": 1}),
    ]:
        error = _error(client.request(method, path, json=body), 404)
        assert error["code"] == "not_found", (method, path)
    assert "nope" in _error(client.post(URL, json=spec(model="nope:1")), 404)["message"]
    register_classifier(services, monkeypatch, "churn")
    _error(client.post(URL, json=spec(model="churn:7")), 404)
    _error(client.post(URL, json=spec(model="churn@champion")), 404)
    _error(client.put(f"{URL}/nope", json=spec(name="nope")), 404)
    nameless = {k: v for k, v in spec().items() if k != "name"}
    _error(client.put(f"{URL}/nope", json=nameless), 404)  # the path names it
    assert client.get(URL).json() == []
    client.post(URL, json=spec()).raise_for_status()
    _error(client.get(f"{URL}/churn/configs/2"), 404)
    mismatch = _error(client.put(f"{URL}/churn", json=spec(name="other")), 400)
    assert mismatch["details"]["field"] == "name"
    _error(client.get(f"{URL}/churn/configs/first"), 400)


def test_production_deploys_only_approved_versions(
    services: Services, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(services, monkeypatch, "churn")
    refused = _error(client.post(URL, json=spec(environment="production")), 403)
    assert "Approved" in refused["message"] and "PendingManualApproval" in refused["message"]
    assert client.get(URL).json() == []
    register_classifier(services, monkeypatch, "churn", status=ApprovalStatus.REJECTED)
    _error(client.post(URL, json=spec(model="churn:2")), 403)  # Rejected: not even staging
    services.registry.set_approval("churn", 1, ApprovalStatus.APPROVED, actor="test", comment="")
    created = client.post(URL, json=spec(environment="production"))
    assert created.status_code == 201, created.text
    assert [e["name"] for e in client.get(URL).json()] == ["churn"]


def test_with_auth_a_viewer_reads_and_a_deployer_writes(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Endpoints put models in front of traffic: the deployer's role, not the editor's."""
    settings = load_settings(
        home=tmp_path / "authed", database={"url": sqlite_url}, server={"auth": True}
    )
    services = Services.open(settings)
    try:
        register_classifier(services, monkeypatch, "churn")
        viewer = services.tokens.create("t-viewer", "viewer", created_by="test")[1]
        editor = services.tokens.create("t-editor", "editor", created_by="test")[1]
        deployer = services.tokens.create("t-deployer", "deployer", created_by="test")[1]
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            assert client.post(URL, json=spec()).status_code == 401
            for who in (viewer, editor):
                denied = _error(client.post(URL, json=spec(), headers=bearer(who)), 403)
                assert denied["code"] == "forbidden" and "needs deployer" in denied["message"]
            assert client.get(URL, headers=bearer(viewer)).json() == []
            created = client.post(URL, json=spec(), headers=bearer(deployer))
            assert created.status_code == 201, created.text
            assert created.json()["created_by"] == "t-deployer"
            _error(client.delete(f"{URL}/churn", headers=bearer(viewer)), 403)
            _error(client.post(f"{URL}/churn/rollback", json={}, headers=bearer(viewer)), 403)
            history = client.get(f"{URL}/churn/history", headers=bearer(viewer)).json()
            assert history[0]["created_by"] == "t-deployer"
    finally:
        services.close()
