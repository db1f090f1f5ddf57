"""The control-plane application: routers under ``/api/v1``, the web console at ``/``, the
Host check, admission, audit, the token check, limits, errors."""

from __future__ import annotations

from fastapi import FastAPI

from slipway import __version__
from slipway.api import API_PREFIX
from slipway.api.admission import Admission
from slipway.api.audit import AuditMiddleware
from slipway.api.auth import TokenGate
from slipway.api.errors import install_error_handlers
from slipway.api.heap import FreezeLongLived, freeze
from slipway.api.hosts import HostCheck, accepted_hosts
from slipway.api.limits import RequestLimits
from slipway.api.routes import (
    alerts,
    applied,
    audit,
    batch,
    code,
    endpoints,
    feature_views,
    features,
    health,
    jobs,
    models,
    monitoring,
    pipelines,
    settings,
    tables,
    tokens,
    tracking,
    work,
    workspaces,
)
from slipway.console.app import install as install_console
from slipway.services import Services

# Routes reachable without a token even when auth is on; everything else needs one.
PUBLIC_PATHS = frozenset(
    {
        f"{API_PREFIX}/health/live",
        f"{API_PREFIX}/openapi.json",
        f"{API_PREFIX}/docs",
        f"{API_PREFIX}/docs/oauth2-redirect",
    }
)


# Every router of the control plane, included under API_PREFIX in this order.
ROUTERS = (
    health.router,
    tokens.router,
    workspaces.router,
    audit.router,
    settings.router,
    work.router,
    work.events_router,
    features.reads,
    features.router,
    feature_views.router,
    tables.reads,
    tables.writes,
    models.router,
    tracking.router,
    pipelines.router,
    jobs.router,
    code.router,
    endpoints.router,
    batch.router,
    monitoring.router,
    alerts.router,
    applied.router,
)


def create_app(services: Services, *, freeze_heap: bool = False) -> FastAPI:
    """The control plane bound to ``services`` (which the caller opens and closes).

    ``freeze_heap``: keep the process's long-lived objects out of the garbage collector's
    full passes (:mod:`slipway.api.heap`) — for a process that is the control plane
    (``slipway server``), not one that embeds it among other work (tests)."""
    app = FastAPI(
        title="Slipway control plane",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=f"{API_PREFIX}/docs/oauth2-redirect",
    )
    app.state.services = services
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    # The console answers at `/` beside the API; it signs people in itself (a cookie and a
    # CSRF token, see slipway.console.session), so the token check leaves its paths alone.
    install_console(app)
    install_error_handlers(app, public=PUBLIC_PATHS)
    server = services.settings.server
    # Starlette runs the middleware added last first. From the outside in: the Host check
    # (DNS rebinding), admission (shedding costs no body read, audit row or token lookup),
    # the audit log (denials included), the token check (401 before any body is read),
    # then the body limits.
    app.add_middleware(
        RequestLimits,
        max_body_bytes=server.max_body_bytes,
        max_json_depth=server.max_json_depth,
        max_table_bytes=server.max_table_bytes,
    )
    app.add_middleware(TokenGate, services=services, public=PUBLIC_PATHS)
    app.add_middleware(
        AuditMiddleware,
        audit=services.audit,
        routes=[route for router in ROUTERS for route in router.routes],
    )
    app.add_middleware(
        Admission,
        max_in_flight=server.max_in_flight,
        max_queue=server.max_queue,
        max_in_flight_per_token=server.max_in_flight_per_token,
        exempt=(f"{API_PREFIX}/health",),
    )
    app.add_middleware(HostCheck, accepted=accepted_hosts(server))
    if freeze_heap:
        freeze()
        app.add_middleware(FreezeLongLived)
    return app
