"""The models pages: the list, versions side by side, a version's lineage, and approvals
(which record who decided, in the registry's history and the audit log)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from slipway.registry.models import ApprovalStatus
from slipway.services import Services
from tests.console.conftest import act, csrf_of, sign_in
from tests.registry.logged import register_classifier


def test_models_empty_state_names_the_command(console: TestClient) -> None:
    page = console.get("/models")
    assert page.status_code == 200
    assert "slipway models register NAME runs:/RUN_ID/model" in page.text


def test_models_list_search_and_model_page(
    console: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(services, monkeypatch, "churn")
    register_classifier(services, monkeypatch, "churn", status=ApprovalStatus.APPROVED)
    register_classifier(services, monkeypatch, "fraud")
    listing = console.get("/models")
    assert 'data-model="churn"' in listing.text and 'data-model="fraud"' in listing.text
    searched = console.get("/models", params={"q": "FRA"})
    assert 'data-model="fraud"' in searched.text and 'data-model="churn"' not in searched.text
    model = console.get("/models/churn")
    assert model.status_code == 200
    assert 'data-version="1"' in model.text and 'data-version="2"' in model.text
    assert "Approve v1" in model.text  # auth off: the local user is an admin
    version = console.get("/models/churn/versions/2")
    assert version.status_code == 200
    assert 'id="approval-status"' in version.text and "Approved" in version.text
    assert '<svg class="chart dag"' in version.text  # lineage drawn
    assert "run " in version.text


def test_unknown_model_and_version_are_404_pages(
    console: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert console.get("/models/nope").status_code == 404
    register_classifier(services, monkeypatch, "churn")
    missing = console.get("/models/churn/versions/9")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "Traceback" not in missing.text
    assert console.get("/models/churn/versions/abc").status_code == 404


def test_approve_and_reject_change_the_status_and_are_audited(
    console: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(services, monkeypatch, "churn")
    answer = act(console, "/models/churn/versions/1/approve", comment="looks good")
    assert answer.status_code == 200, answer.text
    assert services.registry.get("churn", 1).approval_status is ApprovalStatus.APPROVED
    refused = act(console, "/models/churn/versions/1/reject")
    assert refused.status_code == 400
    assert "why" in refused.json()["error"]
    assert services.registry.get("churn", 1).approval_status is ApprovalStatus.APPROVED
    rejected = act(console, "/models/churn/versions/1/reject", comment="drifts")
    assert rejected.status_code == 200
    actions = [e.action for e in services.audit.list(limit=10)]
    assert "model.approved" in actions and "model.rejected" in actions


def test_an_action_without_the_csrf_token_is_refused(
    console: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(services, monkeypatch, "churn")
    csrf_of(console)  # the browser has its seed cookie
    for data in ({}, {"csrf_token": "0" * 64}):
        refused = console.post("/models/churn/versions/1/approve", data=data)
        assert refused.status_code == 403
    other_site = console.post(
        "/models/churn/versions/1/approve",
        data={"csrf_token": csrf_of(console)},
        headers={"origin": "http://evil.example"},
    )
    assert other_site.status_code == 403
    assert services.registry.get("churn", 1).approval_status is ApprovalStatus.PENDING


def test_a_viewer_sees_no_controls_and_is_refused(
    auth_console: TestClient, auth_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(auth_services, monkeypatch, "churn")
    viewer = auth_services.tokens.create("v", "viewer", created_by="test")[1]
    sign_in(auth_console, viewer)
    page = auth_console.get("/models/churn/versions/1")
    assert page.status_code == 200
    assert "/approve" not in page.text and "/reject" not in page.text
    forged = act(auth_console, "/models/churn/versions/1/approve", _page="/models/churn")
    assert forged.status_code == 403
    assert auth_services.registry.get("churn", 1).approval_status is ApprovalStatus.PENDING


def test_an_approver_other_than_the_author_approves(
    auth_console: TestClient, auth_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(auth_services, monkeypatch, "churn")
    approver = auth_services.tokens.create("alice", "approver", created_by="test")[1]
    sign_in(auth_console, approver)
    assert "Approve" in auth_console.get("/models/churn/versions/1").text
    answer = act(auth_console, "/models/churn/versions/1/approve", _page="/models/churn")
    assert answer.status_code == 200, answer.text
    entry = next(e for e in auth_services.audit.list(limit=10) if e.action == "model.approved")
    assert entry.actor == "alice"
