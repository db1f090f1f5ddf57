"""The control plane's admission (api/admission.py) on a real uvicorn server: past
``server.max_in_flight`` running and ``server.max_queue`` waiting a request is answered
429 with ``Retry-After`` at once; one token may hold at most
``server.max_in_flight_per_token``; health routes are never shed; a waiting client that
goes away gives its place back; a client retrying with backoff gets through.

Requests are held in flight deterministically, without timing: a raw socket sends a
request's headers and all of its body but the last byte, so the request has been admitted
(admission runs before the body is read) and waits for the byte. Tests wait on the
middleware's own counters, never on time.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from slipway.api.admission import Admission
from slipway.api.app import create_app
from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings
from slipway.core.specs import parse_spec
from slipway.services import Services
from slipway.serving.spec import EndpointSpec
from tests.waiting import eventually

QUERY = "/api/v1/feature-groups/query"
BODY = json.dumps({"sql": "select 1 as x"}).encode()


@dataclass
class Server:
    url: str
    port: int
    admission: Admission
    tokens: dict[str, str]  # role -> secret


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serving(home: Path, **server: Any) -> Iterator[Server]:
    settings = load_settings(home=home, server={"auth": True, **server})
    services = Services.open(settings)
    tokens = {
        role: services.tokens.create(f"adm-{role}", role, created_by="test")[1]
        for role in ("viewer", "editor")
    }
    app = create_app(services)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: runner.started, what="the control plane started", timeout=30)
        layer: Any = app.middleware_stack
        while not isinstance(layer, Admission):
            layer = layer.app
        yield Server(f"http://127.0.0.1:{port}", port, layer, tokens)
    finally:
        runner.should_exit = True
        thread.join(timeout=30)
        services.close()


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Server]:
    """Two running, one waiting, no per-token bound."""
    with _serving(tmp_path / "home", max_in_flight=2, max_queue=1) as server:
        yield server


@pytest.fixture
def per_token(tmp_path: Path) -> Iterator[Server]:
    """Room for many, but one request per token (or anonymous caller) at a time."""
    with _serving(
        tmp_path / "home", max_in_flight=8, max_queue=8, max_in_flight_per_token=1
    ) as server:
        yield server


class Held:
    """A request sent but for the last byte of its body: admitted, and waiting for it."""

    def __init__(self, port: int, secret: str | None) -> None:
        auth = b"authorization: Bearer %s\r\n" % secret.encode() if secret else b""
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(30)
        self.sock.sendall(
            b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n%s"
            b"content-length: %d\r\n\r\n%s" % (QUERY.encode(), auth, len(BODY), BODY[:-1])
        )

    def finish(self) -> int:
        """Send the last byte; the response's status."""
        self.sock.sendall(BODY[-1:])
        data = b""
        while b"\r\n" not in data:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection without answering"
            data += chunk
        self.sock.close()
        return int(data.split(b" ", 2)[1])


def _bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def _query(server: Server, secret: str | None) -> httpx.Response:
    headers = {"content-type": "application/json", **(_bearer(secret) if secret else {})}
    return httpx.post(f"{server.url}{QUERY}", content=BODY, headers=headers, timeout=30)


def _assert_shed(response: httpx.Response, mentions: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert error["code"] == "overloaded"
    assert error["details"] == {"retry_after": 1}
    assert mentions in error["message"]


def _state(server: Server, running: int, waiting: int) -> Callable[[], bool]:
    admission = server.admission
    return lambda: admission.running == running and len(admission.waiting) == waiting


def test_past_running_and_waiting_the_rest_is_shed_at_once(small: Server) -> None:
    viewer = small.tokens["viewer"]
    first, second = Held(small.port, viewer), Held(small.port, viewer)
    eventually(_state(small, 2, 0), what="two requests running")
    third = Held(small.port, viewer)
    eventually(_state(small, 2, 1), what="a third one waiting")

    # Full: answered while the others are still held, so it did not wait for them.
    _assert_shed(_query(small, viewer), "max_in_flight and max_queue")
    _assert_shed(_query(small, None), "max_in_flight and max_queue")  # before auth, too
    assert httpx.get(f"{small.url}/api/v1/health/live").status_code == 200
    assert httpx.get(f"{small.url}/api/v1/health", headers=_bearer(viewer)).status_code == 200
    assert small.admission.shed == 2

    assert first.finish() == 200
    eventually(_state(small, 2, 0), what="the waiting request took the freed slot")
    assert second.finish() == 200
    assert third.finish() == 200
    eventually(_state(small, 0, 0), what="every slot given back")
    assert _query(small, viewer).status_code == 200


def test_a_waiting_client_that_leaves_gives_its_place_back(small: Server) -> None:
    viewer = small.tokens["viewer"]
    running = [Held(small.port, viewer), Held(small.port, viewer)]
    eventually(_state(small, 2, 0), what="two requests running")
    leaving = Held(small.port, viewer)
    eventually(_state(small, 2, 1), what="a third one waiting")
    leaving.sock.close()
    for held in running:
        assert held.finish() == 200
    eventually(_state(small, 0, 0), what="no slot leaked by the client that left")
    assert not small.admission.held
    assert _query(small, viewer).status_code == 200


def test_one_token_cannot_take_every_slot(per_token: Server) -> None:
    viewer, editor = per_token.tokens["viewer"], per_token.tokens["editor"]
    mine = Held(per_token.port, viewer)
    eventually(_state(per_token, 1, 0), what="one request of the viewer running")
    _assert_shed(_query(per_token, viewer), "max_in_flight_per_token")
    assert _query(per_token, editor).status_code == 200  # another token is not held back
    # No token: admitted, then refused before its body is read, so it never holds a slot.
    assert _query(per_token, None).status_code == 401
    assert mine.finish() == 200
    eventually(_state(per_token, 0, 0), what="every slot given back")
    assert _query(per_token, viewer).status_code == 200


def test_a_client_retrying_with_backoff_gets_through(small: Server) -> None:
    viewer = small.tokens["viewer"]
    held = [Held(small.port, viewer) for _ in range(2)]
    eventually(_state(small, 2, 0), what="two requests running")
    held.append(Held(small.port, viewer))
    eventually(_state(small, 2, 1), what="a third one waiting")
    statuses: list[int] = []

    def client() -> None:
        for attempt in range(1, 30):
            response = _query(small, viewer)
            statuses.append(response.status_code)
            if response.status_code != 429:
                return
            # The client's backoff: exponential from 20 ms, jittered, capped by Retry-After.
            ceiling = min(float(response.headers["retry-after"]), 0.02 * 2**attempt)
            time.sleep(random.uniform(ceiling / 2, ceiling))

    retrying = threading.Thread(target=client)
    retrying.start()
    eventually(lambda: 429 in statuses, what="the client was shed")
    for request in held:
        assert request.finish() == 200
    retrying.join(timeout=60)
    assert not retrying.is_alive()
    assert statuses[-1] == 200 and statuses.count(429) == len(statuses) - 1, statuses


@pytest.mark.parametrize(
    ("area", "values", "field"),
    [
        ("server", {"max_in_flight": 0}, "server.max_in_flight"),
        ("server", {"max_queue": -1}, "server.max_queue"),
        ("server", {"max_in_flight_per_token": 0}, "server.max_in_flight_per_token"),
        ("serving", {"max_queue": 0}, "serving.max_queue"),
        ("serving", {"max_in_flight": 0}, "serving.max_in_flight"),
    ],
)
def test_bad_limits_are_refused_naming_the_setting(
    tmp_path: Path, area: str, values: dict[str, int], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(home=tmp_path, **{area: values})
    assert info.value.field == field


def test_a_bad_endpoint_concurrency_limit_is_refused_naming_the_field() -> None:
    spec = {"name": "e", "variants": [{"name": "main", "model": "m:1"}], "max_concurrency": 0}
    with pytest.raises(InvalidInput) as info:
        parse_spec(EndpointSpec, spec)
    assert info.value.field == "max_concurrency"
    assert parse_spec(EndpointSpec, {**spec, "max_concurrency": 3}).max_concurrency == 3
