"""The few ASGI pieces every gateway route shares: reading a bounded body, parsing JSON
with a depth limit, and answering with one ``http.response.start`` and one body message.

The gateway is a bare ASGI callable rather than a framework app (see
:mod:`slipway.serving.gateway.app`), so these helpers are what a framework would give
it; they stay plain functions so a request pays for no object or middleware of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from slipway.core.errors import InvalidInput, PayloadTooLarge, SlipwayError
from slipway.core.jsondepth import json_depth_exceeds

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
TEXT_HEADERS: Headers = [(b"content-type", b"text/plain; version=0.0.4")]


class MethodNotAllowed(SlipwayError):
    status_code = 405
    code = "method_not_allowed"


def allow(method: str, allowed: str) -> None:
    """Raise 405 unless the request's method is the route's one method."""
    if method != allowed:
        raise MethodNotAllowed(f"use {allowed}")


def header_map(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name (ASGI servers lower-case them already)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 as soon as it (or its declared length) passes
    ``limit`` bytes, before buffering the rest."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    chunks = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def load_json(body: bytes, max_depth: int) -> Any:
    """The body as JSON; 400 naming ``body`` if it is not JSON or nests deeper than
    ``max_depth`` (a deep document is cheap to send and costly to walk)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
    if json_depth_exceeds(body, max_depth):
        raise InvalidInput(f"the JSON nests deeper than {max_depth} levels", field="body")
    return value


async def respond(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    """One complete response: ``headers`` (JSON's content type by default) and the body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*(headers or JSON_HEADERS), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def error(send: Send, exc: SlipwayError) -> None:
    """The error's status, its headers (``Retry-After``, …) and its JSON document."""
    headers = list(JSON_HEADERS)
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.http_headers().items()]
    await respond(send, exc.status_code, orjson.dumps(exc.to_dict()), headers)
