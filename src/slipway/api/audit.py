"""ASGI middleware recording every mutation in the audit log, denied ones included."""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from slipway.api import API_PREFIX
from slipway.api.auth import READ_ONLY, SAFE_METHODS
from slipway.api.limits import StatusCapture
from slipway.core.errors import BackendUnavailable
from slipway.security.audit import AuditLog

log = logging.getLogger("slipway.audit")
READ_KEY = next(iter(READ_ONLY))


class AuditMiddleware:
    def __init__(self, app: ASGIApp, *, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def record(status: int) -> None:
            route = scope.get("route")
            if not (getattr(route, "openapi_extra", None) or {}).get(READ_KEY):
                await anyio.to_thread.run_sync(self._record, scope, status)

        capture = StatusCapture(send, before_end=record)
        try:
            await self.app(scope, receive, capture)
        finally:
            await capture.end()

    def _record(self, scope: Scope, status: int) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        principal = state.get("principal")
        route = scope.get("route")
        # Routers are included under the API prefix; their routes know only their own part.
        template = getattr(route, "path", None)
        template = f"{API_PREFIX}{template}" if template else scope["path"]
        outcome = "success" if status < 400 else ("denied" if status in (401, 403) else "failure")
        try:
            self.audit.record(
                actor=principal.name if principal else "unauthenticated",
                action=f"{scope['method']} {template}",
                resource=scope["path"],
                outcome=outcome,
                status_code=status,
                details={"client": (scope.get("client") or ["?"])[0]},
            )
        except BackendUnavailable as exc:  # the database is away: a line, not a traceback
            log.warning("could not write the audit record for %s: %s", scope["path"], exc.message)
        except Exception:  # the response is already sent; never turn it into an error
            log.exception("could not write the audit record for %s", scope["path"])
