"""The overview: the model dashboard (one row per model, what serves it, what watches it),
the health of every backend, counts, and the recent events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from slipway.console.dashboard import dashboard
from slipway.console.health import health as platform_health
from slipway.console.paging import paginate
from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, here
from slipway.console.session import services_of, viewer
from slipway.core.errors import NotFound

router = APIRouter(route_class=ConsoleRoute)


@router.get("/")
def overview(request: Request) -> Response:
    who = viewer(request)
    services = services_of(request).in_workspace(who.workspace)
    board = dashboard(services)
    return render(
        request,
        "overview.html",
        title="Overview",
        board=board,
        page=paginate(board.rows, request),
        page_link=lambda number: here(request, "/", page=number),
    )


@router.get("/health")
def health(request: Request) -> Response:
    """The backends' health as a fragment (checks take a moment: loaded after the page)."""
    viewer(request)
    checks = platform_health(services_of(request))
    return render(request, "overview_health.html", title="Health", checks=checks)


@router.get("/{path:path}")
def unknown(request: Request, path: str) -> Response:
    """A 404 page; under ``/api/`` the API's own 404 (JSON), as if the console were not there."""
    if path.startswith("api/") or path == "api":
        message = f"no route {request.method} /{path}"
        return JSONResponse({"error": {"code": "not_found", "message": message}}, 404)
    viewer(request)
    raise NotFound(f"there is no console page at /{path}")
