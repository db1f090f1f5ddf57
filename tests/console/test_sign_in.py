"""Signing in to the console: the token in an HttpOnly, SameSite=Strict cookie, the CSRF
token on every change, a viewer's limits, and no sign-in with auth off."""

from __future__ import annotations

from fastapi.testclient import TestClient

from slipway.services import Services
from tests.console.conftest import csrf_of, sign_in


def test_auth_off_needs_no_sign_in(console: TestClient) -> None:
    assert console.get("/").status_code == 200
    assert console.get("/sign-in", follow_redirects=False).status_code == 303


def test_without_a_session_every_page_goes_to_sign_in(auth_console: TestClient) -> None:
    for path in ("/", "/models", "/endpoints/x", "/audit"):
        answer = auth_console.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/sign-in?next=")
    page = auth_console.get("/sign-in")
    assert page.status_code == 200 and 'name="token"' in page.text


def test_sign_in_sets_a_strict_httponly_cookie(
    auth_console: TestClient, auth_services: Services
) -> None:
    secret = auth_services.tokens.create("v", "viewer", created_by="test")[1]
    csrf = csrf_of(auth_console, "/sign-in")
    answer = auth_console.post(
        "/sign-in",
        data={"token": secret, "csrf_token": csrf, "next": "/models"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/models"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie")
    assert "slipway_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = auth_console.get("/")
    assert page.status_code == 200 and "v · viewer" in page.text


def test_a_wrong_token_or_a_foreign_next_is_refused(
    auth_console: TestClient, auth_services: Services
) -> None:
    csrf = csrf_of(auth_console, "/sign-in")
    wrong = auth_console.post(
        "/sign-in", data={"token": "slw_nope_nope", "csrf_token": csrf}, follow_redirects=False
    )
    assert wrong.status_code == 401 and "unknown API token" in wrong.text
    secret = auth_services.tokens.create("v", "viewer", created_by="test")[1]
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        answer = auth_console.post(
            "/sign-in",
            data={"token": secret, "csrf_token": csrf, "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/", target


def test_sign_in_without_csrf_is_refused(auth_console: TestClient, auth_services: Services) -> None:
    secret = auth_services.tokens.create("v", "viewer", created_by="test")[1]
    auth_console.get("/sign-in")
    answer = auth_console.post("/sign-in", data={"token": secret}, follow_redirects=False)
    assert answer.status_code == 403
    assert "slipway_session" not in answer.headers.get("set-cookie", "")


def test_a_revoked_token_ends_the_session(
    auth_console: TestClient, auth_services: Services
) -> None:
    token, secret = auth_services.tokens.create("v", "viewer", created_by="test")
    sign_in(auth_console, secret)
    assert auth_console.get("/", follow_redirects=False).status_code == 200
    auth_services.tokens.revoke(token.id)
    assert auth_console.get("/", follow_redirects=False).status_code == 303


def test_sign_out_drops_the_cookie(auth_console: TestClient, auth_services: Services) -> None:
    secret = auth_services.tokens.create("v", "viewer", created_by="test")[1]
    sign_in(auth_console, secret)
    csrf = csrf_of(auth_console, "/")
    answer = auth_console.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert auth_console.get("/", follow_redirects=False).status_code == 303


def test_the_api_does_not_take_the_console_cookie(
    auth_console: TestClient, auth_services: Services
) -> None:
    """The cookie is the console's: the REST API still wants a bearer token, so a page of
    another site cannot call the API with the browser's session."""
    secret = auth_services.tokens.create("a", "admin", created_by="test")[1]
    sign_in(auth_console, secret)
    assert auth_console.get("/api/v1/models").status_code == 401


def test_pages_forbid_framing_and_foreign_scripts(console: TestClient) -> None:
    page = console.get("/")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["cache-control"] == "no-store"


def test_unknown_pages_are_404_pages_and_api_paths_stay_json(console: TestClient) -> None:
    page = console.get("/no/such/page")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    api = console.get("/api/v1/no-such-route")
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"


def test_a_workspace_without_a_role_is_403(
    auth_console: TestClient, auth_services: Services
) -> None:
    auth_services.workspaces.create("team-a", actor="test")
    secret = auth_services.tokens.create("v", "viewer", created_by="test", workspaces=["default"])[
        1
    ]
    sign_in(auth_console, secret)
    assert auth_console.get("/?ws=team-a").status_code == 403
    assert auth_console.get("/?ws=no-such").status_code in (403, 404)


def test_the_workspace_switch_lists_only_granted_workspaces(
    auth_console: TestClient, auth_services: Services
) -> None:
    for name in ("team-a", "team-b"):
        auth_services.workspaces.create(name, actor="test")
    secret = auth_services.tokens.create(
        "v", "viewer", created_by="test", workspaces=["default", "team-a"]
    )[1]
    sign_in(auth_console, secret)
    page = auth_console.get("/?ws=team-a")
    assert page.status_code == 200
    switch = page.text.split('id="ws-switch"')[1].split("</select>")[0]
    assert '<option value="team-a" selected>' in switch and 'value="default"' in switch
    assert "team-b" not in switch


def test_the_api_keeps_its_own_404_and_405(console: TestClient) -> None:
    """The console's catch-all page stops short of /api: a wrong method on an API route is
    still the API's 405, an unknown API path its JSON 404."""
    assert console.get("/api/v1/executions/x/cancel").status_code == 405
    unknown = console.get("/api/v1/nothing")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert console.get("/apis").status_code == 404  # a console path like any other
    assert "text/html" in console.get("/apis").headers["content-type"]
