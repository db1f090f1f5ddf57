"""Every route of the console, with the role it needs: each is tried without a session
(sign-in), with too small a role (403, nothing done), and each change without its CSRF
token (403) — the console's twin of tests/security/test_permission_matrix.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.security.tokens import Role
from slipway.services import Services
from tests.console.conftest import csrf_of, sign_in
from tests.security.test_permission_matrix import app_routes

# (method, path template) → the role it needs (None: no session needed).
CONSOLE: dict[tuple[str, str], Role | None] = {
    ("GET", "/sign-in"): None,
    ("POST", "/sign-in"): None,
    ("POST", "/sign-out"): None,
    ("GET", "/"): Role.VIEWER,
    ("GET", "/health"): Role.VIEWER,
    ("GET", "/{path:console_path}"): Role.VIEWER,
    ("GET", "/features"): Role.VIEWER,
    ("GET", "/features/{name}"): Role.VIEWER,
    ("GET", "/models"): Role.VIEWER,
    ("GET", "/models/{name}"): Role.VIEWER,
    ("GET", "/models/{name}/versions/{number}"): Role.VIEWER,
    ("POST", "/models/{name}/versions/{number}/approve"): Role.APPROVER,
    ("POST", "/models/{name}/versions/{number}/reject"): Role.APPROVER,
    ("GET", "/pipelines"): Role.VIEWER,
    ("GET", "/pipelines/{name}"): Role.VIEWER,
    ("GET", "/pipelines/executions/{execution_id}"): Role.VIEWER,
    ("GET", "/pipelines/executions/{execution_id}/live"): Role.VIEWER,
    ("GET", "/pipelines/executions/{execution_id}/steps/{step}/log"): Role.VIEWER,
    ("GET", "/pipelines/executions/{execution_id}/steps/{step}/log/live"): Role.VIEWER,
    ("POST", "/pipelines/executions/{execution_id}/cancel"): Role.EDITOR,
    ("POST", "/pipelines/executions/{execution_id}/retry"): Role.EDITOR,
    ("GET", "/endpoints"): Role.VIEWER,
    ("GET", "/endpoints/{name}"): Role.VIEWER,
    ("GET", "/endpoints/{name}/live"): Role.VIEWER,
    ("POST", "/endpoints/{name}/rollback"): Role.DEPLOYER,
    ("GET", "/monitoring"): Role.VIEWER,
    ("GET", "/monitoring/{monitor}"): Role.VIEWER,
    ("GET", "/monitoring/{monitor}/runs/{run_id}"): Role.VIEWER,
    ("POST", "/monitoring/{monitor}/run"): Role.EDITOR,
    ("POST", "/monitoring/{monitor}/enable"): Role.EDITOR,
    ("POST", "/monitoring/{monitor}/disable"): Role.EDITOR,
    ("GET", "/jobs"): Role.VIEWER,
    ("GET", "/jobs/training/{name}"): Role.VIEWER,
    ("GET", "/jobs/training/{name}/live"): Role.VIEWER,
    ("POST", "/jobs/training/{name}/stop"): Role.EDITOR,
    ("GET", "/jobs/tuning/{name}"): Role.VIEWER,
    ("GET", "/jobs/tuning/{name}/live"): Role.VIEWER,
    ("POST", "/jobs/tuning/{name}/stop"): Role.EDITOR,
    ("GET", "/jobs/batch/{name}"): Role.VIEWER,
    ("GET", "/jobs/batch/{name}/live"): Role.VIEWER,
    ("POST", "/jobs/batch/{name}/stop"): Role.EDITOR,
    ("GET", "/audit"): Role.AUDITOR,
}
PARAMS = {
    "name": "nothing-here",
    "number": "1",
    "execution_id": "0" * 32,
    "step": "s",
    "monitor": "nothing-here",
    "run_id": "1",
    "path:console_path": "no/such/page",
}
# Every role, from the least to the most.
ROLES = (Role.VIEWER, Role.EDITOR, Role.APPROVER, Role.DEPLOYER, Role.AUDITOR, Role.ADMIN)


def concrete(template: str) -> str:
    for key, value in PARAMS.items():
        template = template.replace("{" + key + "}", value)
    return template


def test_every_console_route_has_a_row(console: TestClient) -> None:
    routes = {r for r in app_routes(console.app) if not r[1].startswith("/api/")}  # type: ignore[arg-type]
    assert sorted(routes - set(CONSOLE)) == [], "console routes without a row here"
    assert sorted(set(CONSOLE) - routes) == [], "rows for routes the console no longer has"


@pytest.fixture
def secrets(auth_services: Services) -> dict[Role, str]:
    return {
        role: auth_services.tokens.create(f"t-{role.value}", role, created_by="test")[1]
        for role in ROLES
    }


def test_without_a_session_nothing_but_sign_in_answers(auth_console: TestClient) -> None:
    for (method, template), role in CONSOLE.items():
        if role is None:
            continue
        answer = auth_console.request(method, concrete(template), follow_redirects=False)
        expected = 303 if method == "GET" else 401
        assert answer.status_code == expected, (method, template, answer.status_code)


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_each_role_gets_exactly_what_it_may(
    auth_services: Services, secrets: dict[Role, str], role: Role
) -> None:
    with TestClient(create_app(auth_services), raise_server_exceptions=False) as client:
        sign_in(client, secrets[role])
        csrf = csrf_of(client, "/sign-in")
        for (method, template), needed in CONSOLE.items():
            if needed is None or template == "/sign-out":
                continue
            path = concrete(template)
            data = {"csrf_token": csrf, "to_version": "1", "comment": "x"}
            answer = client.request(
                method,
                path,
                data=data if method == "POST" else None,
                headers={"accept": "application/json"} if method == "POST" else {},
            )
            if role.allows(needed):
                # Allowed: the resource is missing (404) or the input refused (400/409),
                # never a 403.
                assert answer.status_code != 403, (role, method, template, answer.text)
            else:
                assert answer.status_code == 403, (role, method, template, answer.status_code)
            if method == "POST" and role.allows(needed):
                forged = client.post(path, data={"comment": "x"})
                assert forged.status_code == 403, (role, template, "without CSRF")
