"""The console's routes answer people: errors become pages (a 404 page for an unknown
resource, never a stack trace), a missing session goes to the sign-in page, and an action
sent by the console's script gets its error as JSON to show next to the control.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from annotated_types import Interval
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from slipway.console.render import link, render
from slipway.console.session import SignInRequired, check_csrf, require, viewer
from slipway.core.errors import InvalidInput, SlipwayError
from slipway.security.tokens import Role

log = logging.getLogger(__name__)

# A number in a console URL (a version, a run id): what the database's integers hold, so a
# huge one is a 404 page, not a driver's overflow.
Id = Annotated[int, Interval(ge=0, le=2**63 - 1)]


def wants_json(request: Request) -> bool:
    """The console's script sends actions with ``Accept: application/json``."""
    return "application/json" in request.headers.get("accept", "")


def error_page(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    titles = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found"}
    return render(
        request,
        "error.html",
        title=titles.get(status, "Error"),
        status_code=status,
        status=status,
        message=message,
    )


class ConsoleRoute(APIRoute):
    """An APIRoute whose errors are the console's pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as missing:
                fragment = request.headers.get("x-console-fragment")
                if wants_json(request) or request.method != "GET" or fragment:
                    return JSONResponse({"error": missing.message, "status": 401}, 401)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", 303)
            except SlipwayError as refused:
                return error_page(request, refused.status_code, refused.message)
            except RequestValidationError as bad:
                where = ", ".join(
                    ".".join(str(p) for p in e.get("loc", ())[1:]) or "request"
                    for e in bad.errors()
                )
                status = 404 if any(e.get("loc", ("",))[0] == "path" for e in bad.errors()) else 400
                return error_page(request, status, f"not a valid value: {where}")
            except HTTPException as http:
                return error_page(request, http.status_code, str(http.detail))
            except Exception:
                log.exception("console page %s failed", request.url.path)
                return error_page(
                    request, 500, "the console could not show this page; see the server's log"
                )

        return answer


async def form_of(request: Request) -> dict[str, str]:
    """The submitted form's fields: URL-encoded only (the console's forms and script send
    nothing else; no file is ever uploaded here), the first value of each name."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if not body:
        return {}
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput("send the form URL-encoded", field="content-type")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as bad:
        raise InvalidInput(f"not a form: {bad}", field="body") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


async def action(request: Request, needed: Role) -> tuple[Any, dict[str, str]]:
    """Check an action before doing it: a viewer whose role allows ``needed`` (403
    otherwise), and the CSRF token from the form or the ``X-CSRF-Token`` header."""
    who = require(request, needed)
    fields = await form_of(request)
    check_csrf(request, fields.get("csrf_token") or request.headers.get("x-csrf-token"))
    return who, fields


def done(request: Request, target: str, message: str = "") -> Response:
    """A succeeded action: JSON for the script (which then loads ``target``), else a
    redirect there."""
    if wants_json(request):
        return JSONResponse({"ok": True, "location": target, "message": message})
    return RedirectResponse(target, 303)


def here(request: Request, path: str, **query: Any) -> str:
    """A link to ``path`` in the request's workspace."""
    return link(path, viewer(request).workspace, **query)
