"""The remote client's HTTP transport against a real (stdlib) HTTP server: bodies streamed
in pieces (chunked) arrive whole, a repeatable call is sent again from the start of its body after a
503, a call that is not repeatable is sent once, and a dead server is a typed error."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pytest

from slipway.client.transport import Transport
from slipway.core.arrowipc import IpcChunks, from_ipc
from slipway.core.errors import BackendUnavailable


class _Recorder(BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail_first`` requests, then 200 with what it received."""

    fail_first = 0
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        assert self.headers.get("Transfer-Encoding") == "chunked"  # bodies are streamed
        body = self._chunked()
        type(self).received.append({"length": len(body), "sha": hashlib.sha256(body).hexdigest()})
        if len(type(self).received) <= type(self).fail_first:
            payload = {"error": {"code": "backend_unavailable", "message": "busy", "details": {}}}
            self._answer(503, payload, {"Retry-After": "0"})
            return
        self._answer(200, type(self).received[-1], {})

    def _chunked(self) -> bytes:
        parts = []
        while size := int(self.rfile.readline().strip(), 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        self.rfile.readline()  # the CRLF after the last (empty) chunk
        return b"".join(parts)

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


MIB = 1 << 20


def _pieces(size: int, piece: int = MIB) -> list[bytes]:
    """A body of ``size`` bytes in pieces (a list: iterable again for a retry)."""
    body = bytes(i % 251 for i in range(size))
    return [body[i : i + piece] for i in range(0, size, piece)]


def _digest(pieces: list[bytes]) -> dict[str, object]:
    body = b"".join(pieces)
    return {"length": len(body), "sha": hashlib.sha256(body).hexdigest()}


def test_a_streamed_body_arrives_whole(server: tuple[str, type[_Recorder]]) -> None:
    url, _ = server
    pieces = _pieces(3 * MIB + 5)
    transport = Transport(url, retries=0)
    answer = transport.request("POST", "/x", content=pieces).json()
    transport.close()
    assert answer == _digest(pieces)


def test_a_repeatable_call_is_sent_again_from_the_start_of_its_body(
    server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = server
    handler.fail_first = 2
    pieces = _pieces(MIB + 1)
    transport = Transport(url, retries=3, backoff=0)
    answer = transport.request(
        "POST", "/x", content=pieces, headers={"Idempotency-Key": "k1"}
    ).json()
    transport.close()
    assert handler.received == [_digest(pieces)] * 3
    assert answer == _digest(pieces)


def test_a_call_that_is_not_repeatable_is_sent_once(server: tuple[str, type[_Recorder]]) -> None:
    url, handler = server
    handler.fail_first = 1
    transport = Transport(url, retries=3, backoff=0)
    with pytest.raises(BackendUnavailable, match="busy"):
        transport.request("POST", "/x", content=[b"once"])
    transport.close()
    assert len(handler.received) == 1


def test_a_server_that_is_not_there_is_a_typed_error() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Recorder) as probe:
        port = probe.server_address[1]  # closed when the block ends: nothing listens there
    transport = Transport(f"http://127.0.0.1:{port}", retries=1, backoff=0)
    with pytest.raises(BackendUnavailable, match="did not answer"):
        transport.request("GET", "/x")
    transport.close()


def test_a_streamed_table_arrives_whole_and_is_streamed_again_on_a_retry(
    server: tuple[str, type[_Recorder]],
) -> None:
    """An Arrow table goes up batch by batch (chunked, no buffer of the whole stream);
    a retried call encodes and sends it again from the start."""
    url, handler = server
    handler.fail_first = 1
    table = pa.table({"k": [f"k{i}" for i in range(200_000)], "x": np.arange(200_000.0)})
    chunks = IpcChunks(table, batch_rows=50_000)
    expected = b"".join(chunks)
    assert from_ipc(expected).equals(table)
    transport = Transport(url, retries=2, backoff=0)
    answer = transport.request(
        "POST", "/x", content=chunks, headers={"Idempotency-Key": "k2"}
    ).json()
    transport.close()
    digest = hashlib.sha256(expected).hexdigest()
    assert [r["sha"] for r in handler.received] == [digest, digest]
    assert answer == {"length": len(expected), "sha": digest}
