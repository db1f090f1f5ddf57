"""The remote client's HTTP transport against a real (stdlib) HTTP server: bodies sent in
slices arrive whole, a repeatable call is sent again from the start of its body after a
503, a call that is not repeatable is sent once, and a dead server is a typed error."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from slipway.client.transport import UPLOAD_SLICE, Slices, Transport
from slipway.core.errors import BackendUnavailable


class _Recorder(BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail_first`` requests, then 200 with what it received."""

    fail_first = 0
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"length": len(body), "sha": hashlib.sha256(body).hexdigest()})
        if len(type(self).received) <= type(self).fail_first:
            payload = {"error": {"code": "backend_unavailable", "message": "busy", "details": {}}}
            self._answer(503, payload, {"Retry-After": "0"})
            return
        self._answer(200, type(self).received[-1], {})

    def _answer(self, status: int, payload: object, headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"fail_first": 0, "received": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _body(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def test_slices_cover_the_body_without_gaps_and_can_be_sent_twice() -> None:
    body = _body(UPLOAD_SLICE * 2 + 17)
    slices = Slices(memoryview(body))
    assert len(slices) == len(body)
    first = b"".join(bytes(s) for s in slices)
    second = b"".join(bytes(s) for s in slices)
    assert first == second == body
    assert max(len(s) for s in slices) == UPLOAD_SLICE


def test_a_sliced_body_arrives_whole(server: tuple[str, type[_Recorder]]) -> None:
    url, _ = server
    body = _body(UPLOAD_SLICE * 3 + 5)
    transport = Transport(url, retries=0)
    answer = transport.request("POST", "/x", content=memoryview(body)).json()
    transport.close()
    assert answer == {"length": len(body), "sha": hashlib.sha256(body).hexdigest()}


def test_a_repeatable_call_is_sent_again_from_the_start_of_its_body(
    server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = server
    handler.fail_first = 2
    body = _body(UPLOAD_SLICE + 1)
    transport = Transport(url, retries=3, backoff=0)
    answer = transport.request("POST", "/x", content=body, headers={"Idempotency-Key": "k1"}).json()
    transport.close()
    assert len(handler.received) == 3
    digest = hashlib.sha256(body).hexdigest()
    assert all(r == {"length": len(body), "sha": digest} for r in handler.received)
    assert answer["sha"] == digest


def test_a_call_that_is_not_repeatable_is_sent_once(server: tuple[str, type[_Recorder]]) -> None:
    url, handler = server
    handler.fail_first = 1
    transport = Transport(url, retries=3, backoff=0)
    with pytest.raises(BackendUnavailable, match="busy"):
        transport.request("POST", "/x", content=b"once")
    transport.close()
    assert len(handler.received) == 1


def test_a_server_that_is_not_there_is_a_typed_error() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) as probe:
        port = probe.server_address[1]  # closed when the block ends: nothing listens there
    transport = Transport(f"http://127.0.0.1:{port}", retries=1, backoff=0)
    with pytest.raises(BackendUnavailable, match="did not answer"):
        transport.request("GET", "/x")
    transport.close()
