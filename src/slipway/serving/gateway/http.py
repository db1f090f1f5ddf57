"""The gateway workers' HTTP/1.1 server: httptools parsing on uvloop, straight into the
gateway's ASGI callable, one socket write per response.

uvicorn spends about a quarter of a gateway worker's time per one-row request on its own
machinery (a request-response cycle object, middleware, two writes per response). For a
data plane whose whole budget is ~100 µs per request that is the largest cost left, so
workers run this lean server instead; the gateway stays a plain ASGI app (tests and
embedding still run it under uvicorn). It supports what model clients use: keep-alive,
pipelined requests (answered in order), chunked request bodies, a body-size limit enforced
while reading, and a graceful stop that finishes requests in flight.

Overload is shed here, where it is cheapest. Fast models predict inline on the event
loop, so the gateway's own in-flight count stays near 1 and the real queue is this
server's: requests parsed but unfinished, across connections, pipelined ones included.
Past ``serving.max_queue`` of them a request is answered 429 with ``Retry-After`` from a
prebuilt response without running the app, so the requests that are admitted wait behind
at most ``max_queue`` others and their latency stays bounded however much is offered. A
connection that pipelines more than that much is paused until it drains, so one client
cannot make this process buffer without bound either.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from http import HTTPStatus
from typing import Any, cast

import httptools
import orjson

from slipway.core.tls import server_context
from slipway.serving.gateway.access import CONNECTION_STATE
from slipway.serving.gateway.app import Gateway

log = logging.getLogger("slipway.serving.gateway")

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
# A keep-alive connection is closed after this many requests: the client reconnects and
# the kernel hashes it to a worker again, so a lopsided first spread of long-lived
# connections between the workers' sockets evens out within seconds.
REQUESTS_PER_CONNECTION = 1000
_DISCONNECT = {"type": "http.disconnect"}
RETRY_AFTER_SECONDS = 1
_SHED_HEADERS = [
    (b"content-type", b"application/json"),
    (b"retry-after", b"%d" % RETRY_AFTER_SECONDS),
]


def _error_body(status: int, code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": {}}})


class _Server:
    """What every connection of one worker shares, the admission count among it."""

    def __init__(self, app: Gateway, max_body_bytes: int, max_queue: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_queue = max_queue
        self.admitted = 0  # requests running or waiting in a connection's deque
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.shed_body = orjson.dumps(
            {
                "error": {
                    "code": "overloaded",
                    "message": f"this gateway worker has {max_queue} requests queued, its"
                    " serving.max_queue; retry after Retry-After seconds, with backoff",
                    "details": {"retry_after": RETRY_AFTER_SECONDS},
                }
            }
        )


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "shed", "too_large", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.method = "GET"
        self.keep_alive = True
        self.too_large = False
        self.shed = False


class _Connection(asyncio.Protocol):
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.request = _Request()
        self.size = 0
        self.pending: collections.deque[_Request] = collections.deque()
        self.busy = False
        self.paused = False
        self.served = 0
        self.client: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        # What the gateway's access check decided last on this connection (see
        # gateway/access.py): a keep-alive client sends the same token request after
        # request, and the same bytes under the same epoch need no second decision.
        self.decided: dict[str, Any] = {}

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        self.client = transport.get_extra_info("peername")
        self.local = transport.get_extra_info("sockname")
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        # Pipelined requests that will never start give their places back.
        self.server.admitted -= sum(1 for request in self.pending if not request.shed)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.request = _Request()
        self.size = 0

    def on_url(self, url: bytes) -> None:
        self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.server.max_body_bytes:
            self.request.too_large = True
            self.request.body.clear()
        elif not self.request.too_large:
            self.request.body.append(body)

    def on_message_complete(self) -> None:
        request = self.request
        request.method = self.parser.get_method().decode("ascii")
        request.keep_alive = self.parser.should_keep_alive()
        server = self.server
        if server.admitted >= server.max_queue:
            request.shed = True
        else:
            server.admitted += 1
        if self.busy:
            self.pending.append(request)  # pipelined: answered in order
            if len(self.pending) >= server.max_queue and self.transport is not None:
                self.transport.pause_reading()
                self.paused = True
            return
        self._start(request)

    # -- requests ------------------------------------------------------------------------

    def _start(self, request: _Request) -> None:
        if request.shed:
            self._shed(request)
            return
        self.busy = True
        task = asyncio.get_running_loop().create_task(self._handle(request))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _handle(self, request: _Request) -> None:
        try:
            if request.too_large:
                limit = self.server.max_body_bytes
                body = _error_body(
                    413, "payload_too_large", f"the body is larger than {limit} bytes"
                )
                self._write(413, [(b"content-type", b"application/json")], body, keep_alive=False)
                return
            await self._run(request)
        except Exception:  # the app answers its own errors; this is a last resort
            log.exception("gateway: request failed outside the app")
            body = _error_body(500, "internal_error", "internal error")
            self._write(500, [(b"content-type", b"application/json")], body, keep_alive=False)
        finally:
            self.server.admitted -= 1
            self.busy = False
            self._next()

    def _next(self) -> None:
        """Start the next pipelined request, answering shed ones on the way, in order."""
        while self.pending and self.transport is not None:
            self._start(self.pending.popleft())
            if self.busy:
                break
        if self.paused and len(self.pending) < self.server.max_queue:
            self.paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    def _shed(self, request: _Request) -> None:
        """429 at once, from bytes built when the worker started: no app, no task."""
        self.server.app.router.shed += 1
        keep = request.keep_alive and not self.server.stopping
        self._write(429, _SHED_HEADERS, self.server.shed_body, keep_alive=keep)

    async def _run(self, request: _Request) -> None:
        parsed = httptools.parse_url(request.url)
        path = parsed.path.decode("latin-1")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": path,
            "raw_path": parsed.path,
            "query_string": parsed.query or b"",
            "root_path": "",
            "headers": request.headers,
            "client": self.client,
            "server": self.local,
            CONNECTION_STATE: self.decided,
        }
        body = b"".join(request.body)
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return _DISCONNECT
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self.served += 1
                    keep = (
                        request.keep_alive
                        and not self.server.stopping
                        and self.served < REQUESTS_PER_CONNECTION
                    )
                    self._write(status, headers, b"".join(chunks), keep_alive=keep)

        await self.server.app(scope, receive, send)

    def _write(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, *, keep_alive: bool
    ) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        has_length = False
        for name, value in headers:
            if name.lower() == b"content-length":
                has_length = True
            head.append(b"%s: %s\r\n" % (name, value))
        if not has_length:
            head.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        head.append(body)
        transport.write(b"".join(head))
        if not keep_alive:
            transport.close()

    def _fail(self, status: int, message: str) -> None:
        self._write(
            status,
            [(b"content-type", b"application/json")],
            _error_body(status, "invalid_input", message),
            keep_alive=False,
        )

    def close_if_idle(self) -> None:
        if not self.busy and self.transport is not None:
            self.transport.close()


async def serve(app: Gateway, sock: Any, stop: asyncio.Event, *, grace: float = 10.0) -> None:
    """Serve ``app`` on the bound socket ``sock`` until ``stop`` is set. The socket starts
    listening only after ``app.start``, so no connection waits on a worker that is still
    loading."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, app.start)
    sock.listen(4096)
    shared = _Server(app, app.limits.max_body_bytes, app.limits.max_queue)
    server = await loop.create_server(
        lambda: _Connection(shared),
        sock=sock,
        backlog=4096,
        ssl=server_context(app.settings.tls),  # None: plain HTTP
    )
    try:
        await stop.wait()
    finally:
        shared.stopping = True
        server.close()
        for connection in list(shared.connections):
            connection.close_if_idle()
        if shared.tasks:
            await asyncio.wait(list(shared.tasks), timeout=grace)
        for connection in list(shared.connections):
            if connection.transport is not None:
                connection.transport.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
        await loop.run_in_executor(None, app.stop)
