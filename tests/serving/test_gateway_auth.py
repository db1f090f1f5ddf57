"""The gateway with auth on: the platform's tokens, and ``invoke`` granted per endpoint,
through real HTTP to a real gateway."""

from __future__ import annotations

import json
import re
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pandas as pd
import pytest

from slipway.core.errors import InvalidInput, Unauthorized
from slipway.core.settings import load_settings
from slipway.security.resources import Role
from slipway.security.verified import VerifiedTokens
from slipway.services import Services, open_gateway
from slipway.serving.gateway.access import endpoint_of
from slipway.serving.gateway.openapi import DOCUMENT_JSON
from slipway.serving.gateway.server import check_bind
from tests.registry.logged import register_classifier
from tests.security.matrix import (
    DENIED,
    OTHER_WORKSPACE,
    Caller,
    actor,
    expected,
    headers_for,
)
from tests.security.tables import GATEWAY, GATEWAY_CALLERS
from tests.serving.conftest import Platform, RunningGateway, own_http_server, start_gateway
from tests.serving.rawhttp import read_responses
from tests.waiting import eventually

ROWS = {"dataframe_split": {"columns": ["a", "b"], "data": [[0.5, 0.5], [-1.0, -1.0]]}}


@dataclass
class Authed:
    services: Services
    gateway: RunningGateway
    secrets: dict[str, str]

    def post(self, path: str, who: str | None, **headers: str) -> httpx.Response:
        if who is not None:
            headers["Authorization"] = f"Bearer {self.secrets[who]}"
        return httpx.post(f"{self.gateway.url}{path}", json=ROWS, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authed]:
    home = tmp_path_factory.mktemp("gateway-auth") / "home"
    # No allowed_hosts (the suite sets one for TestClient): any name is answered.
    settings = load_settings(home=home, server={"auth": True, "allowed_hosts": []})
    services = Services.open(settings)
    monkeypatch = pytest.MonkeyPatch()
    try:
        version = register_classifier(services, monkeypatch, "clf")
    finally:
        monkeypatch.undo()
    platform = Platform(services, {"clf": f"clf:{version}"})
    tokens = services.tokens
    secrets = {
        "admin": tokens.create("gw-admin", "admin", created_by="test")[1],
        "editor": tokens.create("gw-editor", "editor", created_by="test")[1],
        "churn-only": tokens.create("churn-svc", "viewer", created_by="t", invoke=["churn"])[1],
        "fraud-only": tokens.create("fraud-svc", "viewer", created_by="t", invoke=["fraud"])[1],
        "any": tokens.create("any-svc", "viewer", created_by="test", invoke=["*"])[1],
    }
    gateway, stop = start_gateway(services)
    try:
        for name in ("churn", "fraud"):
            platform.deploy(
                {
                    "name": name,
                    "environment": "staging",
                    "variants": [{"name": "main", "model": f"clf:{version}"}],
                }
            )
        yield Authed(services, gateway, secrets)
    finally:
        stop()
        services.close()


def test_an_invocation_needs_a_token_granted_that_endpoint(authed: Authed) -> None:
    anonymous = authed.post("/endpoints/churn/invocations", None)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert authed.post("/endpoints/churn/invocations", "churn-only").status_code == 200
    refused = authed.post("/endpoints/fraud/invocations", "churn-only")
    assert refused.status_code == 403
    assert "may not invoke endpoint 'fraud'" in refused.json()["error"]["message"]
    assert authed.post("/endpoints/fraud/invocations", "fraud-only").status_code == 200
    # Editors are not invokers by their role (a grant says which endpoints); admins are.
    assert authed.post("/endpoints/churn/invocations", "editor").status_code == 403
    for who in ("admin", "any"):
        assert authed.post("/endpoints/fraud/invocations", who).status_code == 200
    bad = authed.post("/endpoints/churn/invocations", None, Authorization="Bearer slw_x_y")
    assert bad.status_code == 401


def test_every_endpoint_route_checks_the_grant(authed: Authed) -> None:
    infer = {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [0.5]}]}
    for method, path, body in (
        ("POST", "/endpoints/fraud/explain", ROWS),
        ("POST", "/v2/models/fraud/infer", infer),
        ("GET", "/v2/models/fraud", None),
        ("GET", "/v2/models/fraud/ready", None),
        ("POST", "/v2/models/fraud/versions/1/infer", infer),
    ):
        answer = httpx.request(
            method,
            f"{authed.gateway.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {authed.secrets['churn-only']}"},
        )
        assert answer.status_code == 403, (path, answer.text)
        assert httpx.request(method, f"{authed.gateway.url}{path}", json=body).status_code == 401
    granted = httpx.get(
        f"{authed.gateway.url}/v2/models/churn/ready",
        headers={"Authorization": f"Bearer {authed.secrets['churn-only']}"},
    )
    assert granted.status_code == 200


def test_liveness_and_discovery_need_no_token_and_the_rest_any_token(authed: Authed) -> None:
    url = authed.gateway.url
    for path in ("/ping", "/v2", "/v2/health/live", "/v2/health/ready", "/openapi.json"):
        assert httpx.get(f"{url}{path}").status_code == 200, path
    assert httpx.get(f"{url}/metrics").status_code == 401
    metrics = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {authed.secrets['churn-only']}"}
    )
    assert metrics.status_code == 200


def test_a_grant_revocation_and_rotation_reach_the_gateway(authed: Authed) -> None:
    tokens = authed.services.tokens
    token, secret = tokens.create("changing", "viewer", created_by="test", invoke=["churn"])
    headers = {"Authorization": f"Bearer {secret}"}
    invoke = f"{authed.gateway.url}/endpoints/fraud/invocations"
    assert httpx.post(invoke, json=ROWS, headers=headers).status_code == 403
    # Each change applies from the moment it returns (slipway.security.epoch): no waiting.
    tokens.set_invoke(token.id, ["churn", "fraud"])
    assert httpx.post(invoke, json=ROWS, headers=headers).status_code == 200
    _, fresh = tokens.rotate(token.id)
    assert httpx.post(invoke, json=ROWS, headers=headers).status_code == 401
    fresh_headers = {"Authorization": f"Bearer {fresh}"}
    assert httpx.post(invoke, json=ROWS, headers=fresh_headers).status_code == 200
    tokens.revoke(token.id)
    assert httpx.post(invoke, json=ROWS, headers=fresh_headers).status_code == 401


def test_a_foreign_host_is_answered_with_auth_on(authed: Authed) -> None:
    """With auth on the token guards every route, so the gateway may be reached by any
    name (behind a load balancer); with auth off only loopback names are answered."""
    answer = authed.post("/endpoints/churn/invocations", "churn-only", Host="models.example")
    assert answer.status_code == 200


def test_the_clients_token_calls_the_gateway(
    authed: Authed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded SDK sends SLIPWAY_TOKEN; the remote client sends its own token."""
    frame = pd.DataFrame({"a": [0.5], "b": [0.5]})
    monkeypatch.setenv("SLIPWAY_TOKEN", authed.secrets["churn-only"])
    endpoints = authed.services.endpoints
    endpoints.gateway_url = authed.gateway.url
    assert len(endpoints.invoke("churn", frame).predictions) == 1
    with pytest.raises(Exception, match="may not invoke"):
        endpoints.invoke("fraud", frame)
    monkeypatch.delenv("SLIPWAY_TOKEN")
    with pytest.raises(Unauthorized):
        endpoints.invoke("churn", frame)


def test_binding_beyond_loopback_needs_auth() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_bind("0.0.0.0", auth=False)
    assert caught.value.field == "serving.host"
    check_bind("0.0.0.0", auth=True)
    check_bind("127.0.0.1", auth=False)


def test_grants_are_endpoint_names(authed: Authed) -> None:
    tokens = authed.services.tokens
    for bad in (["Bad Name!"], "churn", [""], [3]):
        with pytest.raises(InvalidInput) as caught:
            tokens.create("bad-grant", "viewer", created_by="t", invoke=bad)  # type: ignore[arg-type]
        assert caught.value.field == "invoke"
    assert not [t for t in tokens.list() if t.name == "bad-grant"]  # nothing written
    token, _ = tokens.create("dups", "viewer", created_by="t", invoke=["b", "a", "b"])
    assert token.invoke == ["a", "b"]


def test_the_path_names_the_endpoint() -> None:
    assert endpoint_of("/endpoints/churn/invocations") == "churn"
    assert endpoint_of("/endpoints/churn/explain") == "churn"
    assert endpoint_of("/endpoints/churn/other") is None
    assert endpoint_of("/v2/models/churn/versions/2/infer") == "churn"
    assert endpoint_of("/v2/models/churn") == "churn"
    assert endpoint_of("/metrics") is None


def test_verified_tokens_are_rechecked_after_a_second() -> None:
    now = [0.0]
    calls: list[str] = []

    def authenticate(secret: str) -> object:
        calls.append(secret)
        if secret == "bad":
            raise Unauthorized("unknown API token")
        return type("T", (), {"expires_at": None})()

    cache = VerifiedTokens(authenticate, clock=lambda: now[0], capacity=2)  # type: ignore[arg-type]
    assert cache.cached("s") is None
    cache.verify("s")
    assert cache.cached("s") is not None
    now[0] = 1.5
    assert cache.cached("s") is None  # past the recheck time: verified again
    with pytest.raises(Unauthorized):
        cache.verify("bad")
    assert cache.cached("bad") is None  # a refusal is never kept
    for secret in ("t", "u", "v"):
        cache.verify(secret)
    assert cache.cached("t") is None  # the oldest left when the capacity was passed
    assert calls == ["s", "bad", "t", "u", "v"]


# -- the permission matrix ------------------------------------------------------------------

# The matrix calls the deployed "churn" (the grant of GATEWAY_CALLERS' invoker).
GATEWAY_PARAMS = {"endpoint": "churn", "model": "churn", "version": "1"}


def test_every_gateway_route_has_a_row_and_every_row_a_route() -> None:
    """The gateway dispatches by path tests, not a route table: its OpenAPI document,
    which the fuzz test holds to its answers, is the list of its routes."""
    document = json.loads(DOCUMENT_JSON)
    methods = {"get", "post", "put", "patch", "delete", "head"}
    routes = {
        (m.upper(), path) for path, ops in document["paths"].items() for m in ops if m in methods
    }
    assert sorted(routes - set(GATEWAY)) == [], "gateway routes without a row in tables.py"
    assert sorted(set(GATEWAY) - routes) == [], "rows in tables.py for routes the gateway lacks"


@pytest.fixture(scope="module")
def matrix_headers(authed: Authed) -> dict[Caller, dict[str, str]]:
    def create(caller: Caller, role: Role) -> str:
        grant = [GATEWAY_PARAMS["endpoint"]] if caller.invoke else []
        tokens = authed.services.tokens
        return tokens.create(
            caller.token_name, role, created_by="test", invoke=grant, workspaces=caller.workspaces
        )[1]

    authed.services.workspaces.create(OTHER_WORKSPACE)
    return headers_for(GATEWAY_CALLERS, create)


def test_every_gateway_route_for_every_caller(
    authed: Authed, matrix_headers: dict[Caller, dict[str, str]]
) -> None:
    """Every route by no token, a bad token, each role, an admin of another workspace and
    a viewer granted the endpoint: the status tables.py expects, and an audit entry for
    each refusal (written by the worker within a second, not on the request's path)."""
    audit = authed.services.audit
    after = max((e.id for e in audit.list(limit=1)), default=0)
    wrong: list[str] = []
    denials: Counter[tuple[str, str, str, int]] = Counter()
    with httpx.Client(base_url=authed.gateway.url, timeout=30) as http:
        for (method, template), need in GATEWAY.items():
            path = re.sub(r"\{([^}]+)\}", lambda m: GATEWAY_PARAMS[m.group(1)], template)
            # An empty JSON body: an allowed caller gets a 400 naming it, and nothing runs.
            body = b"{}" if method == "POST" else None
            for caller in GATEWAY_CALLERS:
                headers = matrix_headers[caller] | (
                    {"Content-Type": "application/json"} if body else {}
                )
                answer = http.request(method, path, content=body, headers=headers)
                want, got = expected(need, caller), answer.status_code
                if (want is None and (got in DENIED or got >= 500)) or (
                    want is not None and got != want
                ):
                    wrong.append(f"{method} {path} {caller.label}: {got}, wanted {want}")
                if got == 401 and answer.headers.get("www-authenticate") != "Bearer":
                    wrong.append(f"{method} {path} {caller.label}: 401 without a Bearer challenge")
                if want is not None:
                    denials[(actor(caller), f"gateway {method} {template}", path, want)] += 1
    assert wrong == []
    assert denials  # the matrix refuses someone on every route but the public ones

    def logged() -> Counter[tuple[str, str, str, int]]:
        return Counter(
            (e.actor, e.action, e.resource, e.status_code or 0)
            for e in audit.list(limit=1000)
            if e.id > after and e.outcome == "denied"
        )

    # At least these: a refusal of an earlier test may be written in the same second.
    eventually(lambda: not denials - logged(), what="every refusal in the audit log", timeout=30)


# -- a keep-alive connection's grant ---------------------------------------------------------


@pytest.fixture(scope="module")
def keep_alive(authed: Authed) -> Iterator[tuple[str, int]]:
    """The gateway on its own HTTP server (the one `slipway serve` runs), which keeps a
    connection's last grant: the same bytes under the same token epoch are not decided
    twice."""
    gateway = open_gateway(authed.services.settings)
    with own_http_server(gateway) as address:
        eventually(
            lambda: (
                gateway.started
                and all(
                    (runtime := gateway.state.endpoints.get(name)) is not None and runtime.active
                    for name in ("churn", "fraud")
                )
            ),
            what="the keep-alive gateway serving churn and fraud",
            timeout=60,
        )
        yield address


def _invoke(sock: socket.socket, endpoint: str, secret: str) -> int:
    body = json.dumps(ROWS).encode()
    sock.sendall(
        f"POST /endpoints/{endpoint}/invocations HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: Bearer {secret}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    [response] = read_responses(sock, 1)
    return int(response.split(b" ", 2)[1])


def test_a_connections_grant_is_never_kept_past_a_token_change(
    authed: Authed, keep_alive: tuple[str, int]
) -> None:
    """On one keep-alive connection, a revocation, a grant taken away, another endpoint
    or another token are decided again at once; only the same bytes, route and workspace
    under an unmoved epoch reuse the last grant."""
    tokens = authed.services.tokens
    first, secret = tokens.create("conn-a", "viewer", created_by="t", invoke=["churn"])
    second, other = tokens.create("conn-b", "viewer", created_by="t", invoke=["churn"])
    with socket.create_connection(keep_alive) as sock:
        assert [_invoke(sock, "churn", secret) for _ in range(3)] == [200, 200, 200]
        assert _invoke(sock, "fraud", secret) == 403  # another route: decided again
        assert _invoke(sock, "churn", other) == 200  # another token on the same connection
        tokens.revoke(first.id)
        assert _invoke(sock, "churn", secret) == 401  # at once, on the same connection
        assert _invoke(sock, "churn", other) == 200
        tokens.set_invoke(second.id, ["fraud"])
        assert _invoke(sock, "churn", other) == 403
        assert _invoke(sock, "fraud", other) == 200


def test_a_connections_grant_ends_with_its_tokens_expiry(
    authed: Authed, keep_alive: tuple[str, int]
) -> None:
    tokens = authed.services.tokens
    _, secret = tokens.create(
        "conn-short", "viewer", created_by="t", invoke=["churn"], expires_in=timedelta(seconds=2)
    )
    with socket.create_connection(keep_alive) as sock:
        assert _invoke(sock, "churn", secret) == 200
        eventually(
            lambda: _invoke(sock, "churn", secret) == 401,
            what="the expired token refused on the kept-alive connection",
            timeout=30,
        )
