"""ASGI middleware recording every change in the audit log, and every refusal (reads too)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import anyio.to_thread
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from slipway.api import API_PREFIX
from slipway.api.auth import READ_ONLY, SAFE_METHODS
from slipway.api.limits import StatusCapture
from slipway.core.errors import BackendUnavailable, InvalidInput
from slipway.core.workspace import DEFAULT_WORKSPACE, WORKSPACE_HEADER, validate_workspace
from slipway.security.audit import AuditLog

log = logging.getLogger("slipway.audit")
READ_KEY = next(iter(READ_ONLY))


# Statuses that are refusals of the caller: recorded whatever the method.
DENIED = frozenset({401, 403})
_HEADER = WORKSPACE_HEADER.lower().encode()


class AuditMiddleware:
    """Records each change (non-read request) as it ends, and every refusal (401, 403),
    reads included. ``routes`` are the app's routes (each
    router's, included under ``API_PREFIX``): a request refused before routing (the token
    check's 401 to a request with a body) is matched against them, so its entry names the
    route's template like any other, and a read-only route's stays out of the log."""

    def __init__(self, app: ASGIApp, *, audit: AuditLog, routes: Iterable[BaseRoute] = ()) -> None:
        self.app = app
        self.audit = audit
        self.routes = tuple(route for route in routes if isinstance(route, APIRoute))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reading = scope["method"] in SAFE_METHODS

        async def record(status: int) -> None:
            # Every refusal is recorded, reads included (who tried to read the audit log
            # or the tokens is worth knowing); of what was let through, only changes.
            denied = status in DENIED
            if reading and not denied:
                return
            route = self._route(scope)
            if denied or not (getattr(route, "openapi_extra", None) or {}).get(READ_KEY):
                await anyio.to_thread.run_sync(self._record, scope, status, route)

        capture = StatusCapture(send, before_end=record)
        try:
            await self.app(scope, receive, capture)
        finally:
            await capture.end()

    def _route(self, scope: Scope) -> Any:
        """The route that answered the request, or the first that would have (as the
        router picks it) when the request was refused before routing; None for no route."""
        route = scope.get("route")
        path: str = scope["path"]
        if route is not None or not path.startswith(API_PREFIX):
            return route
        inner = path[len(API_PREFIX) :]
        return next(
            (
                candidate
                for candidate in self.routes
                if scope["method"] in (candidate.methods or ())
                and candidate.path_regex.match(inner)
            ),
            None,
        )

    def _record(self, scope: Scope, status: int, route: Any) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        principal = state.get("principal")
        # Routers are included under the API prefix; their routes know only their own part.
        template = getattr(route, "path", None)
        template = f"{API_PREFIX}{template}" if template else scope["path"]
        outcome = "success" if status < 400 else ("denied" if status in DENIED else "failure")
        # A request in another workspace is that workspace's entry (its auditors read it).
        workspace = state.get("workspace") or _named_workspace(scope)
        resource = scope["path"]
        if workspace != DEFAULT_WORKSPACE:
            resource = f"workspaces/{workspace}{resource}"
        try:
            self.audit.record(
                actor=principal.name if principal else "unauthenticated",
                action=f"{scope['method']} {template}",
                resource=resource,
                outcome=outcome,
                status_code=status,
                details={"client": (scope.get("client") or ["?"])[0]},
            )
        except BackendUnavailable as exc:  # the database is away: a line, not a traceback
            log.warning("could not write the audit record for %s: %s", scope["path"], exc.message)
        except Exception:  # the response is already sent; never turn it into an error
            log.exception("could not write the audit record for %s", scope["path"])


def _named_workspace(scope: Scope) -> str:
    """The workspace a refused request named (before the route could settle it), when it
    is a valid name; else the default workspace."""
    for name, value in scope.get("headers") or ():
        if name == _HEADER:
            try:
                return validate_workspace(value.decode("latin-1"))
            except InvalidInput:
                return DEFAULT_WORKSPACE
    return DEFAULT_WORKSPACE
