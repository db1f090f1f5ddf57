"""The control plane's permission matrix: every route of the real app, called through its
whole middleware stack by no token, a bad token and a token of each role, against the
table written in tests/security/tables.py; every refusal's audit entry; and
docs/permissions.md, rendered from the tables, up to date.

The gateway's and MLflow's matrices run where their servers do
(tests/serving/test_gateway_auth.py, tests/tracking/test_gate.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.security import render
from tests.security.matrix import (
    CALLERS,
    DENIED,
    OTHER_WORKSPACE,
    Caller,
    Need,
    actor,
    expected,
    headers_for,
)
from tests.security.tables import CONTROL_PLANE, CONTROL_PLANE_PARAMS, audited_denial

# A denial's audit entry: (actor, action, resource, status).
Entry = tuple[str, str, str, int]


@dataclass
class Plane:
    services: Services
    client: TestClient
    headers: dict[Caller, dict[str, str]]


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    """One control plane with auth on and one token per role, for the whole module."""
    root = tmp_path_factory.mktemp("matrix")
    settings = load_settings(
        home=root / "home", server={"auth": True}, data={"allowed_roots": [str(root)]}
    )
    services = Services.open(settings)
    services.workspaces.create(OTHER_WORKSPACE)
    headers = headers_for(
        CALLERS,
        lambda caller, role: services.tokens.create(
            caller.token_name, role, created_by="t", workspaces=caller.workspaces
        )[1],
    )
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield Plane(services, client, headers)
    finally:
        services.close()


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, template) of every route the app answers, routers' included: their
    effective paths, as FastAPI includes them."""
    return {
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
    }


def concrete(template: str) -> str:
    """The template with each path parameter filled from CONTROL_PLANE_PARAMS (a new
    parameter's name needs a value there)."""
    return re.sub(r"\{([^}:]+)(?::[^}]+)?\}", lambda m: CONTROL_PLANE_PARAMS[m.group(1)], template)


def denied_entries(services: Services, after: int) -> Counter[Entry]:
    entries = services.audit.list(limit=100)  # a row makes at most 16
    return Counter(
        (e.actor, e.action, e.resource, e.status_code or 0)
        for e in entries
        if e.id > after and e.outcome == "denied"
    )


def last_entry_id(services: Services) -> int:
    newest = services.audit.list(limit=1)
    return newest[0].id if newest else 0


def test_every_route_of_the_app_has_a_row_and_every_row_a_route(plane: Plane) -> None:
    # The API's routes; the console's (outside /api/v1) have their table in
    # tests/console/test_permissions.py.
    routes = {
        (method, path)
        for method, path in app_routes(plane.client.app)  # type: ignore[arg-type]
        if path.startswith("/api/")
    }
    table = set(CONTROL_PLANE)
    assert sorted(routes - table) == [], "routes of the app without a row in tables.py"
    assert sorted(table - routes) == [], "rows in tables.py for routes the app no longer has"


@pytest.mark.parametrize(
    ("method", "template"), list(CONTROL_PLANE), ids=[f"{m} {p}" for m, p in CONTROL_PLANE]
)
def test_every_caller_of_the_route_gets_what_the_table_says(
    plane: Plane, method: str, template: str
) -> None:
    need = CONTROL_PLANE[(method, template)]
    path = concrete(template)
    # A change is sent with an empty JSON body (the token check before the body is read;
    # an allowed caller gets a 4xx naming the body, and nothing starts) and without one
    # (the route's own check): both must refuse the same callers.
    bodies: tuple[bytes | None, ...] = (b"{}", None) if method in ("POST", "PUT") else (None,)
    after = last_entry_id(plane.services)
    wrong: list[str] = []
    denials: Counter[Entry] = Counter()
    for caller in CALLERS:
        want = expected(need, caller)
        for body in bodies:
            headers = dict(plane.headers[caller])
            if body is not None:
                headers["Content-Type"] = "application/json"
            answer = plane.client.request(method, path, content=body, headers=headers)
            got = answer.status_code
            if (want is None and (got in DENIED or got >= 500)) or (
                want is not None and got != want
            ):
                sent = "a body" if body is not None else "no body"
                wrong.append(
                    f"{caller.label} ({sent}): {got} {answer.text[:160]}, wanted"
                    f" {want or 'not 401/403/5xx'}"
                )
            if want is not None and audited_denial(method, need):
                denials[(actor(caller), f"{method} {template}", path, want)] += 1
    assert wrong == []
    # Each refusal of a change is in the audit log, naming the caller and the route's
    # template, reads included.
    assert denied_entries(plane.services, after) == denials


def test_public_routes_answer_without_a_token(plane: Plane) -> None:
    public = [key for key, need in CONTROL_PLANE.items() if need is Need.PUBLIC]
    assert ("GET", "/api/v1/health/live") in public
    for method, path in public:
        assert plane.client.request(method, path).status_code == 200, (method, path)


def test_the_generated_page_is_up_to_date() -> None:
    assert render.DOC.read_text(encoding="utf-8") == render.render(), (
        "docs/permissions.md differs from the tables: run `python -m tests.security.render`"
    )
