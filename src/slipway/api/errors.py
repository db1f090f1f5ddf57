"""Every error leaves the API as ``{"error": {"code", "message", "details"}}``.

Slipway's own errors carry their status; FastAPI's request validation becomes a 400 that
names each bad field (not FastAPI's default 422), and so does a body FastAPI cannot even
parse; unknown routes and methods keep their 404 / 405; anything unexpected is a logged
500 that reveals nothing internal.

FastAPI reads and parses a body before it runs the route's dependencies, so a malformed
body would be judged before the caller is: such a 400 is given only to an authenticated
caller, an anonymous one gets the 401 that any other request of theirs would.

:func:`document_errors` writes the same into the OpenAPI document, so that a client (or
a fuzzer) reading it learns the statuses and the body of every error instead of
FastAPI's 422, which this API never sends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from slipway.api.auth import authenticate
from slipway.core.errors import SlipwayError
from slipway.core.unavailable import as_unavailable

log = logging.getLogger("slipway.api")

_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, object] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status)


async def _slipway_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SlipwayError)
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=exc.http_headers())


def _validation_error(exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "field": ".".join(str(part) for part in err["loc"] if part != "body") or "body",
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return error_response(
        400,
        "invalid_input",
        f"{first['field']}: {first['message']}",
        {"field": first["field"], "errors": problems},
    )


def _http_error(exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's own 400: a body it cannot decode (not UTF-8, not the declared form).
        return error_response(400, "invalid_input", f"body: {exc.detail}", {"field": "body"})
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def _caller_first(respond: Callable[[Exception], JSONResponse], public: Collection[str]) -> Handler:
    """``respond`` to a request error, unless the caller is not authenticated (401)."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        is_bad_input = getattr(exc, "status_code", 400) == 400
        if is_bad_input and request.url.path not in public:
            try:
                await run_in_threadpool(authenticate, request)
            except SlipwayError as refused:
                return JSONResponse(refused.to_dict(), status_code=refused.status_code)
        return respond(exc)

    return handler


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    unavailable = as_unavailable(exc)  # a backend reached by another path than a session
    if unavailable is not None:
        log.warning("%s %s: %s", request.method, request.url.path, unavailable.message)
        return await _slipway_error(request, unavailable)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "description": "for 400s, field names the bad field",
                    "properties": {"field": {"type": "string"}},
                },
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_DESCRIPTIONS = {
    "400": "Invalid input; details.field names the bad field",
    "401": "No API token, or an unknown or revoked one",
    "403": "The token's role does not allow this",
    "404": "A resource the request names does not exist",
    "409": "Conflicts with the resource's current state",
    "413": "The request body is too large",
    "503": "A backend is unavailable, or the server is overloaded; retry later",
    "507": "The disk under a store is full; details.path names where the write went",
}


def _error_responses(method: str, path: str, operation: dict[str, Any], public: bool) -> list[str]:
    statuses = ["503"]
    if "422" in operation["responses"] or "requestBody" in operation:
        statuses.append("400")
    if "requestBody" in operation:
        statuses.append("413")
    if not public:
        statuses += ["401", "403"]
    if "{" in path or method != "get":
        statuses.append("404")  # the resource in the path, or one the body refers to
    if method != "get":
        statuses += ["409", "507"]  # a change may store data: a full disk refuses it
    return sorted(statuses)


def document_errors(app: FastAPI, *, public: Collection[str]) -> None:
    """Make ``app``'s OpenAPI document describe the errors it really sends: the error body
    for 400 (instead of FastAPI's 422), 401/403 (except on ``public`` paths), 404 (paths
    naming a resource, and changes, which may refer to others), 409 and 507 (changes),
    413 (bodies) and 503 (every operation); errors a route declares itself get the body."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        components = document.setdefault("components", {})
        components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for schema in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(schema, None)
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                statuses = _error_responses(method, path, operation, path in public)
                responses.pop("422", None)
                for status in statuses:
                    responses[status] = {"description": _ERROR_DESCRIPTIONS[status]}
                for status, response in responses.items():
                    if status >= "400":
                        response["content"] = {"application/json": {"schema": _ERROR_REF}}
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI, *, public: Collection[str] = ()) -> None:
    """Answer every error in the error shape, and document it (:func:`document_errors`);
    ``public`` paths are those reachable without a token."""
    app.add_exception_handler(SlipwayError, _slipway_error)
    app.add_exception_handler(RequestValidationError, _caller_first(_validation_error, public))
    app.add_exception_handler(StarletteHTTPException, _caller_first(_http_error, public))
    app.add_exception_handler(Exception, _unexpected)
    document_errors(app, public=public)
