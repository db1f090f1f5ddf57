"""The overview: the model dashboard (one row per model, what serves it, what watches it),
the health of every backend, counts, and the recent events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.convertors import PathConvertor, register_url_convertor

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


class _ConsolePath(PathConvertor):
    """Any path but the API's: a wrong method on an API route stays the API's own 405, and
    an unknown API path its JSON 404, as if the console were not there."""

    regex = r"(?!api(?:/|$)).*"


register_url_convertor("console_path", _ConsolePath())


@router.get("/{path:console_path}")
def unknown(request: Request, path: str) -> Response:
    """A 404 page for any other path."""
    viewer(request)
    raise NotFound(f"there is no console page at /{path}")
