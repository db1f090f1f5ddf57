"""DNS rebinding and the order of checks, on real servers (uvicorn on loopback).

- With auth off the control plane answers loopback names only: a page whose name was made
  to resolve to 127.0.0.1 (``Host: attacker.example``) cannot create an admin token.
- With auth on any name is answered (the token guards it) unless ``server.allowed_hosts``
  lists the names; then only those and loopback are.
- The token is checked before the body is read: the proof is ``Expect: 100-continue``,
  to which the server answers ``100 Continue`` only when the application asks for the
  body; an anonymous request gets its 401 instead, with the body never sent.
- The gateway (loopback only) refuses foreign names too.

The suite's settings list ``testserver`` in ``server.allowed_hosts`` (tests/conftest.py,
for Starlette's TestClient); these tests state the list they need.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.api.hosts import accepted_hosts
from slipway.core.errors import Forbidden, InvalidInput
from slipway.core.net import free_port, host_name
from slipway.core.settings import ServerSettings, load_settings
from slipway.services import Services
from tests.serving.conftest import start_gateway
from tests.waiting import eventually

TOKENS = "/api/v1/tokens"
ATTACKER = "attacker.example"


@dataclass
class Server:
    services: Services
    port: int
    admin: str  # an admin token's secret (auth on or off)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(
        self,
        method: str,
        path: str,
        *,
        host: str,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """A request to this server's loopback address, naming it ``host``."""
        headers = (headers or {}) | {"host": host}
        if secret:
            headers["authorization"] = f"Bearer {secret}"
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


@contextmanager
def _serving(home: Path, **server: Any) -> Iterator[Server]:
    server.setdefault("allowed_hosts", [])  # not the suite's "testserver"
    services = Services.open(load_settings(home=home, server=server))
    _, admin = services.tokens.create("t-admin", "admin", created_by="test")
    port = free_port()
    runner = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: runner.started, what="the control plane started", timeout=30)
        yield Server(services, port, admin)
    finally:
        runner.should_exit = True
        thread.join(timeout=30)
        services.close()


@pytest.fixture
def open_server(tmp_path: Path) -> Iterator[Server]:
    """Auth off: the developer's laptop."""
    with _serving(tmp_path / "home", auth=False) as server:
        yield server


@pytest.fixture
def authed_server(tmp_path: Path) -> Iterator[Server]:
    with _serving(tmp_path / "home", auth=True) as server:
        yield server


def _token_names(services: Services) -> set[str]:
    return {token.name for token in services.tokens.list()}


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


# -- DNS rebinding: the Host check ---------------------------------------------------------


def test_with_auth_off_a_foreign_host_cannot_create_a_token(open_server: Server) -> None:
    """The attack from issue 20: ``curl -H 'Host: attacker.example:PORT' -d ...`` was 201."""
    before = _token_names(open_server.services)
    for host in (f"{ATTACKER}:{open_server.port}", ATTACKER, "127.0.0.1.attacker.example"):
        created = open_server.call("POST", TOKENS, host=host, json={"name": "x", "role": "admin"})
        error = _error(created, 403)
        assert error["code"] == Forbidden.code
        assert error["details"] == {"host": host.partition(":")[0]}
        assert "server.allowed_hosts" in error["message"]
        _error(open_server.call("GET", TOKENS, host=host), 403)
        _error(open_server.call("GET", "/api/v1/health/live", host=host), 403)
    assert _token_names(open_server.services) == before


def test_with_auth_off_loopback_names_are_answered(open_server: Server) -> None:
    port = open_server.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        listed = open_server.call("GET", TOKENS, host=host)
        assert listed.status_code == 200, (host, listed.text)
    created = open_server.call(
        "POST", TOKENS, host=f"localhost:{port}", json={"name": "laptop", "role": "viewer"}
    )
    assert created.status_code == 201, created.text
    assert "laptop" in _token_names(open_server.services)
    # httpx names the server by its URL, as every client does.
    assert httpx.get(f"{open_server.url}{TOKENS}", timeout=30).status_code == 200


def test_with_auth_on_a_foreign_host_with_a_valid_token_is_answered(
    authed_server: Server,
) -> None:
    """A token is what protects a server with auth on: a browser never sends it by itself."""
    listed = authed_server.call("GET", TOKENS, host=ATTACKER, secret=authed_server.admin)
    assert listed.status_code == 200, listed.text
    anonymous = authed_server.call("POST", TOKENS, host=ATTACKER, json={"name": "x"})
    assert _error(anonymous, 401)["code"] == "unauthorized"
    assert "x" not in _token_names(authed_server.services)


@pytest.mark.parametrize("auth", [True, False])
def test_allowed_hosts_are_the_only_names_besides_loopback(tmp_path: Path, auth: bool) -> None:
    with _serving(tmp_path / "home", auth=auth, allowed_hosts=["slipway.internal"]) as server:
        port, admin = server.port, server.admin
        for host in (f"slipway.internal:{port}", "Slipway.Internal", f"127.0.0.1:{port}"):
            response = server.call("GET", TOKENS, host=host, secret=admin)
            assert response.status_code == 200, (host, response.text)
        for host in (ATTACKER, f"internal:{port}", f"slipway.internal.{ATTACKER}"):
            refused = server.call("GET", TOKENS, host=host, secret=admin)
            assert _error(refused, 403)["code"] == Forbidden.code, host


def test_which_hosts_each_setting_accepts() -> None:
    loopback = {"localhost", "127.0.0.1", "::1"}
    assert accepted_hosts(ServerSettings(auth=False)) == loopback
    assert accepted_hosts(ServerSettings(auth=True)) is None  # any name
    assert accepted_hosts(ServerSettings(auth=True, allowed_hosts=["a.b"])) == loopback | {"a.b"}
    assert accepted_hosts(ServerSettings(host="::1")) == loopback


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"localhost:8420", "localhost"),
        (b"LocalHost", "localhost"),
        (b"[::1]:8420", "::1"),
        (b"127.0.0.1.", "127.0.0.1"),
        (b"localhost:80@attacker.example", "localhost:80@attacker.example"),
        (b"localhost:", "localhost:"),
        (b"[::1]x", "[::1]x"),
    ],
)
def test_a_host_header_is_read_strictly(raw: bytes, name: str) -> None:
    assert host_name(raw) == name


def test_allowed_hosts_take_names_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_SERVER__ALLOWED_HOSTS", "Slipway.Example., 10.0.0.5,[2001:DB8::1]")
    assert load_settings().server.allowed_hosts == ["slipway.example", "10.0.0.5", "2001:db8::1"]
    for bad in ("slipway.example:8420", "*.example", "http://slipway.example", ""):
        with pytest.raises(InvalidInput) as refused:
            load_settings(server={"allowed_hosts": [bad]})
        assert refused.value.field == "server.allowed_hosts", bad


# -- the token before the body ---------------------------------------------------------------


def _first_answer(port: int, head: bytes) -> bytes:
    """Send a request's head with ``Expect: 100-continue`` and none of its body; the first
    thing the server answers: ``100 Continue`` if the application asks for the body."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(30)  # a guard against a hang, not a timed assertion
        sock.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection without answering: {data!r}"
            data += chunk
        if data.startswith(b"HTTP/1.1 100"):
            return data
        head_part, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head_part.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection in the middle of its answer"
            body += chunk
        return head_part + b"\r\n\r\n" + body


def _head(port: int, length: int, secret: str | None) -> bytes:
    auth = b"authorization: Bearer %s\r\n" % secret.encode() if secret else b""
    return (
        b"POST %s HTTP/1.1\r\nhost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
        b"expect: 100-continue\r\n%scontent-length: %d\r\n\r\n"
        % (TOKENS.encode(), port, auth, length)
    )


def test_an_anonymous_body_is_refused_before_it_is_read(authed_server: Server) -> None:
    port = authed_server.port
    ten_mib = 10 * 1024 * 1024
    # The control: with a valid token the application asks for the body.
    asked = _first_answer(port, _head(port, 1024, authed_server.admin))
    assert asked.startswith(b"HTTP/1.1 100"), asked
    for secret in (None, "slw_0123456789abcdef_not-the-secret", "garbage"):
        for length in (1024, ten_mib, 64 * 1024 * 1024):
            answer = _first_answer(port, _head(port, length, secret))
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 401"), (secret, length, answer[:200])
            assert b"\r\nwww-authenticate: Bearer\r\n" in head + b"\r\n", head
            error = json.loads(body)["error"]
            assert error["code"] == "unauthorized"


def test_an_anonymous_body_over_the_limit_is_401_not_413(authed_server: Server) -> None:
    big = b"{" + b" " * (authed_server.services.settings.server.max_body_bytes + 1) + b"}"
    headers = {"content-type": "application/json"}
    anonymous = authed_server.call("POST", TOKENS, host="127.0.0.1", content=big, headers=headers)
    assert _error(anonymous, 401)["code"] == "unauthorized"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    with_token = authed_server.call(
        "POST", TOKENS, host="127.0.0.1", secret=authed_server.admin, content=big, headers=headers
    )
    assert _error(with_token, 413)["code"] == "payload_too_large"


def test_the_refused_body_is_audited_and_a_token_is_looked_up_once(
    authed_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 401 of the token check is in the audit log as a denial; a request with a valid
    token is attributed to it, and the route reuses the caller the check verified."""
    services = authed_server.services
    lookups: list[str] = []
    real = services.tokens.authenticate

    def counted(presented: str) -> Any:
        lookups.append(presented)
        return real(presented)

    monkeypatch.setattr(services.tokens, "authenticate", counted)
    refused = authed_server.call("POST", TOKENS, host="127.0.0.1", json={"name": "anon"})
    assert refused.status_code == 401
    assert lookups == []  # no token: refused without a database read
    made = authed_server.call(
        "POST", TOKENS, host="127.0.0.1", secret=authed_server.admin, json={"name": "made"}
    )
    assert made.status_code == 201, made.text
    assert lookups == [authed_server.admin]

    def both_recorded() -> list[tuple[str, str, int]]:
        entries = [(e.actor, e.outcome, e.status_code) for e in services.audit.list()]
        assert len(entries) >= 2
        return entries

    entries = eventually(both_recorded, what="two audit entries")
    assert ("unauthenticated", "denied", 401) in entries
    assert ("t-admin", "success", 201) in entries


def test_requests_without_a_body_are_judged_by_their_route(tmp_path: Path) -> None:
    """Nothing to read, so the route's own check answers them as before: an unknown path
    stays 404; a body to the same path is refused first. (A TestClient names itself
    ``testserver``, which the suite's settings allow.)"""
    settings = load_settings(home=tmp_path / "home", server={"auth": True})
    services = Services.open(settings)
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            assert client.get("/api/v1/nope").status_code == 404
            assert client.get(TOKENS).status_code == 401
            assert client.delete(f"{TOKENS}/x").status_code == 401
            refused = client.post("/api/v1/nope", content=b"{}")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
    finally:
        services.close()


# -- the gateway ------------------------------------------------------------------------


@pytest.fixture
def gateway_url(tmp_path: Path) -> Iterator[str]:
    services = Services.open(load_settings(home=tmp_path / "home"))
    running, stop = start_gateway(services)
    try:
        yield running.url
    finally:
        stop()
        services.close()


def test_the_gateway_refuses_a_foreign_host(gateway_url: str) -> None:
    port = gateway_url.rsplit(":", 1)[1]
    invoke = "/endpoints/missing/invocations"
    for host in (f"{ATTACKER}:{port}", ATTACKER, f"localhost.{ATTACKER}", f"x:{port}"):
        for method, path in (("GET", "/ping"), ("POST", invoke), ("GET", "/metrics")):
            response = httpx.request(
                method, f"{gateway_url}{path}", headers={"host": host}, json={}, timeout=30
            )
            assert response.status_code == 403, (host, path, response.text)
            assert response.json()["error"]["code"] == Forbidden.code
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert httpx.get(f"{gateway_url}/ping", headers={"host": host}).json() == {"status": "ok"}
        missing = httpx.post(f"{gateway_url}{invoke}", headers={"host": host}, json={})
        assert missing.status_code == 404, missing.text  # routed: the endpoint is unknown
