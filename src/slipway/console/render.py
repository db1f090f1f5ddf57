"""HTML answers: Jinja2 templates (autoescaped) with what every page needs — the viewer,
the workspace, the CSRF token, the navigation — and links that keep the page's workspace.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from slipway import __version__
from slipway.console.session import (
    CSRF_FIELD,
    WORKSPACE_PARAM,
    csrf_token,
    keep_seed,
    services_of,
    viewer,
)
from slipway.core.errors import SlipwayError
from slipway.core.workspace import DEFAULT_WORKSPACE

# (path, label): the sections of the navigation, in order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("/", "Overview"),
    ("/features", "Feature groups"),
    ("/models", "Models"),
    ("/pipelines", "Pipelines"),
    ("/endpoints", "Endpoints"),
    ("/monitoring", "Monitoring"),
    ("/jobs", "Jobs"),
    ("/audit", "Audit log"),
)


def link(path: str, workspace: str = DEFAULT_WORKSPACE, **query: Any) -> str:
    """``path`` with ``query`` (None values dropped) and the workspace when not the default."""
    params = {k: v for k, v in query.items() if v is not None and v != ""}
    if workspace != DEFAULT_WORKSPACE:
        params[WORKSPACE_PARAM] = workspace
    return f"{path}?{urlencode(params)}" if params else path


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``3 min ago``: how long before now a time was (``—`` for none)."""
    if value is None:
        return "—"
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        return "in " + _span(-seconds)
    return _span(seconds) + " ago"


def _span(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def when(value: datetime | None) -> str:
    """A time as ``2026-12-07 10:42:05 UTC``."""
    if value is None:
        return "—"
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: Any, digits: int = 4) -> str:
    """A metric for a table: floats to ``digits`` significant digits, ``—`` for none."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


_env = Environment(
    loader=PackageLoader("slipway.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(ago=ago, when=when, number=number, as_json=as_json)
_env.globals.update(sections=SECTIONS, slipway_version=__version__)


def render(
    request: Request,
    template: str,
    *,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` with ``context``, plus the viewer (None before sign-in), the
    CSRF token and a ``link`` that keeps the workspace."""
    try:
        who = viewer(request)
    except SlipwayError:  # a sign-in or error page for someone the console does not know
        who = None
    workspace = who.workspace if who else DEFAULT_WORKSPACE
    # The workspaces this person may switch to: those their token is granted.
    choices: list[str] = []
    if who is not None and not request.headers.get("x-console-fragment"):
        choices = [w.name for w in services_of(request).workspaces.list(who.grants)]

    def here(path: str, **query: Any) -> str:
        return link(path, workspace, **query)

    body = _env.get_template(template).render(
        request=request,
        title=title,
        viewer=who,
        workspace=workspace,
        workspaces=choices,
        csrf_field=CSRF_FIELD,
        csrf=csrf_token(request),
        link=here,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code)
    response.headers["cache-control"] = "no-store"
    response.headers["content-security-policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    keep_seed(request, response)
    return response
