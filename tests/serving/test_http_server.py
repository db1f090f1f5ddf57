"""The gateway workers' own HTTP/1.1 server, over raw sockets: keep-alive, pipelining,
chunked bodies, the body limit while reading, malformed requests, a graceful stop."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from slipway.services import open_gateway
from tests.serving.conftest import Platform, own_http_server
from tests.serving.rawhttp import read_responses
from tests.waiting import eventually

BODY = b'{"dataframe_records": [{"x1": 1.0, "x2": 0.5}]}'


@pytest.fixture(scope="module")
def address(platform: Platform) -> Iterator[tuple[str, int]]:
    settings = platform.services.settings
    limits = settings.serving.model_copy(update={"max_body_bytes": 4096})
    gateway = open_gateway(settings.model_copy(update={"serving": limits}))
    with own_http_server(gateway) as address:
        eventually(lambda: gateway.started, what="the gateway started", timeout=30)
        platform.deploy(
            {"name": "raw", "variants": [{"name": "main", "model": platform.refs["linear"]}]}
        )
        eventually(
            lambda: (
                (runtime := gateway.state.endpoints.get("raw")) is not None
                and runtime.active is not None
            ),
            what="the gateway serving raw",
            timeout=30,
        )
        yield address


def _request(body: bytes = BODY, extra: bytes = b"") -> bytes:
    return (
        b"POST /endpoints/raw/invocations HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\n"
        + extra
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


def test_keep_alive_and_pipelining(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as sock:
        sock.sendall(_request() * 3)  # three requests in one write: answered in order
        responses = read_responses(sock, 3)
        assert len(responses) == 3
        assert all(r.startswith(b"HTTP/1.1 200 OK") for r in responses)
        sock.sendall(_request())  # the connection stays open
        assert read_responses(sock, 1)[0].startswith(b"HTTP/1.1 200")


def test_chunked_body(address: tuple[str, int]) -> None:
    half = len(BODY) // 2
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        half,
        BODY[:half],
        len(BODY) - half,
        BODY[half:],
    )
    request = (
        b"POST /endpoints/raw/invocations HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + chunked
    )
    with socket.create_connection(address) as sock:
        sock.sendall(request)
        assert read_responses(sock, 1)[0].startswith(b"HTTP/1.1 200")


def test_body_limit_and_malformed_requests(address: tuple[str, int]) -> None:
    big = (
        b'{"dataframe_records": [' + b'{"x1": 1.0, "x2": 0.5},' * 400 + b'{"x1": 1.0, "x2": 0.5}]}'
    )
    with socket.create_connection(address) as sock:
        sock.sendall(_request(big))
        response = read_responses(sock, 1)[0]
        assert response.startswith(b"HTTP/1.1 413") and b"connection: close" in response
    with socket.create_connection(address) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        response = read_responses(sock, 1)[0]
        assert response.startswith(b"HTTP/1.1 400")


def test_connection_close_is_honoured(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as sock:
        sock.sendall(_request(extra=b"connection: close\r\n"))
        response = read_responses(sock, 1)[0]
        assert b"connection: close" in response
        assert sock.recv(10) == b""  # the server closed it
