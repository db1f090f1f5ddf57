"""Workspaces on the control plane: who creates them, who sees them, and what a request
naming one may reach — through the app's whole middleware stack with auth on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from slipway.core.workspace import WORKSPACE_HEADER
from slipway.services import Services
from tests.api.conftest import bearer


def _in(secret: str, workspace: str | None = None) -> dict[str, str]:
    headers = bearer(secret)
    if workspace is not None:
        headers[WORKSPACE_HEADER] = workspace
    return headers


def _error(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()["error"]
    return body


def test_a_platform_admin_creates_workspaces_and_grants_them(
    services: Services, client: TestClient, tokens: dict[str, str]
) -> None:
    admin = _in(tokens["admin"])
    created = client.post("/api/v1/workspaces", json={"name": "fraud", "description": "team"})
    _error(created, 401)
    created = client.post("/api/v1/workspaces", json={"name": "fraud"}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "fraud" and created.json()["created_by"] == "t-admin"
    _error(client.post("/api/v1/workspaces", json={"name": "fraud"}, headers=admin), 409)
    bad = _error(client.post("/api/v1/workspaces", json={"name": "Fraud Team"}, headers=admin), 400)
    assert bad["details"]["field"] == "name"
    listed = client.get("/api/v1/workspaces", headers=admin).json()
    assert [w["name"] for w in listed] == ["default", "fraud"]

    granted = client.post(
        "/api/v1/tokens",
        json={"name": "fraud-editor", "role": "editor", "workspaces": ["fraud"]},
        headers=admin,
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["workspaces"] == ["fraud"]
    unknown = client.post(
        "/api/v1/tokens",
        json={"name": "lost", "role": "editor", "workspaces": ["nowhere"]},
        headers=admin,
    )
    assert _error(unknown, 400)["details"]["field"] == "workspaces"
    assert "lost" not in [t.name for t in services.tokens.list()]  # nothing written
    # Editors, viewers — and the default workspace's own tokens — change nothing here.
    for role in ("viewer", "editor"):
        _error(
            client.post("/api/v1/workspaces", json={"name": "x"}, headers=_in(tokens[role])), 403
        )
    entries = [
        (e.actor, e.action, e.resource) for e in services.audit.list(action="workspaces.create")
    ]
    assert entries == [("t-admin", "workspaces.create", "workspace/fraud")]


def test_a_token_reaches_only_the_workspaces_it_was_granted(
    services: Services, client: TestClient, tokens: dict[str, str]
) -> None:
    services.workspaces.create("fraud", actor="test")
    services.workspaces.create("growth", actor="test")
    _, fraud = services.tokens.create("fraud-editor", "editor", workspaces=["fraud"])
    _, both = services.tokens.create("both", "viewer", workspaces=["fraud", "growth"])

    assert [w["name"] for w in client.get("/api/v1/workspaces", headers=_in(fraud)).json()] == [
        "fraud"
    ]
    assert [w["name"] for w in client.get("/api/v1/workspaces", headers=_in(both)).json()] == [
        "fraud",
        "growth",
    ]
    assert client.get("/api/v1/workspaces/fraud", headers=_in(fraud)).status_code == 200
    # Another team's workspace is refused the same whether it exists or not.
    _error(client.get("/api/v1/workspaces/growth", headers=_in(fraud)), 403)
    _error(client.get("/api/v1/workspaces/nowhere", headers=_in(fraud)), 403)
    _error(client.get("/api/v1/workspaces/nowhere", headers=_in(tokens["admin"])), 404)

    # Without a header a request acts in the default workspace, where it holds no role.
    refused = _error(client.get("/api/v1/feature-groups", headers=_in(fraud)), 403)
    assert "no role in workspace 'default'" in refused["message"]
    refused = _error(
        client.post("/api/v1/feature-groups", json={}, headers=_in(fraud, "default")), 403
    )
    # A default-workspace token holds no role in another team's workspace either.
    _error(client.get("/api/v1/feature-groups", headers=_in(tokens["editor"], "fraud")), 403)


def test_a_request_naming_a_workspace_is_checked_before_it_acts(
    services: Services, client: TestClient, tokens: dict[str, str]
) -> None:
    services.workspaces.create("fraud", actor="test")
    admin = tokens["admin"]
    bad = _error(client.get("/api/v1/feature-groups", headers=_in(admin, "Not A Name")), 400)
    assert bad["details"]["field"] == WORKSPACE_HEADER
    _error(client.get("/api/v1/feature-groups", headers=_in(admin, "nowhere")), 404)
    # Routes whose resources are not kept per workspace yet refuse to answer for another
    # workspace rather than show it the default workspace's.
    scoped_not_yet = _error(client.get("/api/v1/work", headers=_in(admin, "fraud")), 400)
    assert scoped_not_yet["details"]["field"] == WORKSPACE_HEADER
    assert "default workspace only" in scoped_not_yet["message"]
    assert client.get("/api/v1/work", headers=_in(admin, "default")).status_code == 200
    # Jobs, pipelines, schedules, triggers and alerts are kept per workspace: the other one
    # has none of the default's.
    for path in ("/api/v1/pipelines", "/api/v1/schedules", "/api/v1/triggers", "/api/v1/events"):
        assert client.get(path, headers=_in(admin, "fraud")).json() == [], path
    assert client.get("/api/v1/jobs", headers=_in(admin, "fraud")).json() == []
    assert client.get("/api/v1/tuning-jobs", headers=_in(admin, "fraud")).json() == []
    assert client.get("/api/v1/alerts/rules", headers=_in(admin, "fraud")).json() == []
    assert client.get("/api/v1/batch-jobs", headers=_in(admin, "fraud")).json() == []
    _error(client.get("/api/v1/jobs/anything", headers=_in(admin, "fraud")), 404)


def test_feature_groups_of_the_same_name_in_two_workspaces(
    services: Services, client: TestClient, tokens: dict[str, str]
) -> None:
    services.workspaces.create("fraud", actor="test")
    _, fraud = services.tokens.create("fraud-editor", "editor", workspaces=["fraud"])
    group = {
        "name": "churn",
        "record_identifiers": [{"name": "customer"}],
        "features": [{"name": "score", "type": "float"}],
    }
    default = _in(tokens["editor"])
    assert client.post("/api/v1/feature-groups", json=group, headers=default).status_code == 201
    theirs = _in(fraud, "fraud")
    assert client.post("/api/v1/feature-groups", json=group, headers=theirs).status_code == 201
    _error(client.post("/api/v1/feature-groups", json=group, headers=theirs), 409)
    rows = {"records": [{"customer": "a", "score": 0.5, "event_time": "2024-01-01T00:00:00Z"}]}
    written = client.post("/api/v1/feature-groups/churn/records", json=rows, headers=theirs)
    assert written.status_code in (200, 201), written.text
    lookup = {"keys": [["a"]]}
    found = client.post("/api/v1/feature-groups/churn/lookup", json=lookup, headers=theirs)
    assert found.json()["records"][0]["values"]["score"] == 0.5
    empty = client.post("/api/v1/feature-groups/churn/lookup", json=lookup, headers=default)
    assert empty.json()["records"] == [None]
    client.delete("/api/v1/feature-groups/churn", headers=theirs).raise_for_status()
    assert [g["name"] for g in client.get("/api/v1/feature-groups", headers=default).json()] == [
        "churn"
    ]
    assert client.get("/api/v1/feature-groups", headers=theirs).json() == []


def test_only_an_admin_of_every_workspace_manages_the_platform(
    services: Services, client: TestClient
) -> None:
    """An admin of one team's workspace administers what is in it; handing out tokens or
    reading the platform's settings would reach beyond it."""
    services.workspaces.create("fraud", actor="test")
    _, local_admin = services.tokens.create("fraud-admin", "admin", workspaces=["fraud"])
    _, platform_admin = services.tokens.create("root", "admin")
    assert services.tokens.list()[-1].workspaces == ["*"]  # an admin's default grant
    body = {"name": "sneaky", "role": "admin", "workspaces": ["*"]}
    refused = _error(client.post("/api/v1/tokens", json=body, headers=_in(local_admin)), 403)
    assert "every workspace" in refused["message"]
    _error(client.get("/api/v1/tokens", headers=_in(local_admin)), 403)
    _error(client.get("/api/v1/settings", headers=_in(local_admin)), 403)
    _error(client.post("/api/v1/workspaces", json={"name": "x"}, headers=_in(local_admin)), 403)
    assert client.post("/api/v1/tokens", json=body, headers=_in(platform_admin)).status_code == 201


def test_the_audit_log_shows_each_auditor_its_workspaces(
    services: Services, client: TestClient, tokens: dict[str, str]
) -> None:
    services.workspaces.create("fraud", actor="test")
    _, fraud = services.tokens.create("fraud-editor", "editor", workspaces=["fraud"])
    _, auditor = services.tokens.create("auditor", "auditor")
    _, both = services.tokens.create("both-auditor", "auditor", workspaces=["default", "fraud"])
    group = {
        "name": "churn",
        "record_identifiers": [{"name": "customer"}],
        "features": [{"name": "score", "type": "float"}],
    }
    made = client.post("/api/v1/feature-groups", json=group, headers=_in(fraud, "fraud"))
    assert made.status_code == 201
    _error(client.post("/api/v1/feature-groups", json=group, headers=_in(fraud)), 403)

    def resources(secret: str) -> set[str]:
        answer = client.get("/api/v1/audit", params={"limit": 1000}, headers=_in(secret))
        assert answer.status_code == 200, answer.text
        return {e["resource"] for e in answer.json()}

    theirs = {"workspaces/fraud/api/v1/feature-groups", "workspaces/fraud/feature-group/churn"}
    assert theirs <= resources(both) and theirs <= resources(tokens["admin"])
    assert not theirs & resources(auditor)
    # The refused attempt in the default workspace is the default workspace's entry.
    assert "/api/v1/feature-groups" in resources(auditor)


def _saved_model(services: Services, workspace: str) -> str:
    """A small scikit-learn model saved in ``workspace``'s share of the artifact root."""
    x = pd.DataFrame({"a": np.linspace(-2, 2, 40), "b": np.linspace(1, -1, 40)})
    model = LogisticRegression().fit(x, (x["a"] + x["b"] > 0).astype(int))
    share = "" if workspace == "default" else f"workspaces/{workspace}/"
    path = Path(services.settings.artifact_root) / f"{share}saved/model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=mlflow.models.infer_signature(x, np.zeros(40, dtype=np.int64)),
        pip_requirements=["scikit-learn"],
    )
    return str(path)


def test_models_of_the_same_name_in_two_workspaces(
    services: Services, client: TestClient, tokens: dict[str, str]
) -> None:
    services.workspaces.create("fraud", actor="test")
    _, fraud = services.tokens.create("fraud-editor", "editor", workspaces=["fraud"])
    _, approver = services.tokens.create("fraud-approver", "approver", workspaces=["fraud"])
    default, theirs = _in(tokens["editor"]), _in(fraud, "fraud")
    ours = client.post(
        "/api/v1/models/churn/versions",
        json={"source": _saved_model(services, "default"), "description": "ours"},
        headers=default,
    )
    assert ours.status_code == 201, ours.text
    made = client.post(
        "/api/v1/models/churn/versions",
        json={"source": _saved_model(services, "fraud"), "description": "theirs"},
        headers=theirs,
    )
    assert made.status_code == 201, made.text
    assert ours.json()["version"] == made.json()["version"] == 1

    def described(headers: dict[str, str]) -> str:
        answer = client.get("/api/v1/models/churn/versions/1", headers=headers)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["description"])

    assert (described(default), described(theirs)) == ("ours", "theirs")
    approved = client.post(
        "/api/v1/models/churn/versions/1/approval",
        json={"status": "Approved"},
        headers=_in(approver, "fraud"),
    )
    assert approved.status_code == 200, approved.text
    listed = {
        name: client.get("/api/v1/models", headers=headers).json()
        for name, headers in (("default", default), ("fraud", theirs))
    }
    assert [m["approved"] for m in listed["default"]] == [[]]
    assert [m["approved"] for m in listed["fraud"]] == [[1]]
    # The fraud team's token acts in no other workspace, for reads or writes.
    _error(client.get("/api/v1/models", headers=_in(fraud)), 403)
    _error(
        client.post(
            "/api/v1/models/churn/versions/1/approval",
            json={"status": "Rejected"},
            headers=_in(approver),
        ),
        403,
    )
    # MLflow's registry holds both, each in its workspace.
    assert services.registry.mlflow.tags("churn", 1)["slipway.approval_status"] != "Approved"
    fraud_mlflow = services.registry.mlflow.in_workspace("fraud")
    assert fraud_mlflow.tags("churn", 1)["slipway.approval_status"] == "Approved"
    [entry] = services.audit.list(action="model.approved")
    assert (entry.actor, entry.resource) == ("fraud-approver", "workspaces/fraud/model/churn/1")
