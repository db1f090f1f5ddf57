"""Admission control for the control plane: a bounded number of requests run, a bounded
number wait, and the rest are shed at once with 429 and ``Retry-After``.

Without it uvicorn accepts every connection and starts every request, so under overload
each request waits behind all the others (the thread pool, the database pool) and the
latency of every one of them grows without bound. Bounding what runs
(``server.max_in_flight``) and what waits (``server.max_queue``) per process keeps the
latency of the accepted requests near ``(max_queue / max_in_flight + 1)`` service times,
and tells the rest to come back, which a client retrying with backoff does.
``server.max_in_flight_per_token`` bounds what one caller may hold (running plus waiting),
so one busy script cannot take every slot from the others. Requests are told apart by
the id in their bearer token, read from the header without a database lookup (auth runs
later and rejects a forged one); requests without a well-formed token share one key.

It runs right inside the Host check (:mod:`slipway.api.hosts`), before everything else:
a shed request costs no body read, no audit row, no authentication. Health routes are
never shed, so a probe under load still sees a live process rather than an overloaded one
being restarted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re

from starlette.types import ASGIApp, Receive, Scope, Send

RETRY_AFTER_SECONDS = 1
ANONYMOUS = "anonymous"
_TOKEN = re.compile(rb"bearer\s+slw_([0-9a-f]{16})_\S+", re.IGNORECASE)


def token_key(scope: Scope) -> str:
    """Whose request this is: the bearer token's id, or :data:`ANONYMOUS`."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            match = _TOKEN.fullmatch(value.strip())
            return match.group(1).decode() if match else ANONYMOUS
    return ANONYMOUS


class Admission:
    """ASGI middleware bounding requests running and waiting, per process and per token.

    State lives on the event loop uvicorn runs the app on, so no lock is needed. A slot
    freed while requests wait goes to the oldest waiter directly (FIFO, and a newcomer
    cannot overtake it)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        max_queue: int,
        max_in_flight_per_token: int | None,
        exempt: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.max_per_token = max_in_flight_per_token
        self.exempt = exempt
        self.running = 0
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self.held: dict[str, int] = {}  # per token key: running plus waiting
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = token_key(scope)
        held = self.held.get(key, 0)
        if self.max_per_token is not None and held >= self.max_per_token:
            await self._shed(
                send,
                f"this API token has {held} requests running or waiting, the server's"
                " max_in_flight_per_token",
            )
            return
        full = self.running >= self.max_in_flight
        if full and len(self.waiting) >= self.max_queue:
            await self._shed(
                send,
                f"the control plane has {self.running} requests running and"
                f" {len(self.waiting)} waiting, its max_in_flight and max_queue",
            )
            return
        self.held[key] = held + 1
        try:
            if full:
                await self._wait()
            else:
                self.running += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self._release()
        finally:
            left = self.held[key] - 1
            if left:
                self.held[key] = left
            else:
                del self.held[key]

    def _exempt(self, path: str) -> bool:
        return any(path == prefix or path.startswith(f"{prefix}/") for prefix in self.exempt)

    async def _wait(self) -> None:
        """Wait for a running request to hand its slot over (``running`` stays counted)."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            else:  # cancelled while waiting; a release may have skipped it already
                with contextlib.suppress(ValueError):
                    self.waiting.remove(turn)
            raise

    def _release(self) -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.running -= 1

    async def _shed(self, send: Send, reason: str) -> None:
        self.shed += 1
        body = {
            "error": {
                "code": "overloaded",
                "message": f"{reason}; retry after Retry-After seconds, with backoff",
                "details": {"retry_after": RETRY_AFTER_SECONDS},
            }
        }
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
