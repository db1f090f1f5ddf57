"""Signing in to the console with an API token, and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, done, error_page, form_of, wants_json
from slipway.console.session import (
    CSRF_FIELD,
    check_csrf,
    safe_next,
    services_of,
    sign_in,
    sign_out,
)
from slipway.core.errors import SlipwayError

router = APIRouter(route_class=ConsoleRoute)


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/") -> Response:
    if not services_of(request).settings.server.auth:
        return RedirectResponse(safe_next(next), 303)
    return render(request, "sign_in.html", title="Sign in", next=safe_next(next), error="")


@router.post("/sign-in")
async def sign_in_submit(request: Request) -> Response:
    fields = await form_of(request)
    check_csrf(request, fields.get(CSRF_FIELD) or request.headers.get("x-csrf-token"))
    target = safe_next(fields.get("next"))
    response = done(request, target)
    try:
        sign_in(request, response, fields.get("token", ""))
    except SlipwayError as refused:
        if wants_json(request):
            return error_page(request, refused.status_code, refused.message)
        return render(
            request,
            "sign_in.html",
            title="Sign in",
            status_code=refused.status_code,
            next=target,
            error=refused.message,
        )
    return response


@router.post("/sign-out")
async def sign_out_submit(request: Request) -> Response:
    fields = await form_of(request)
    check_csrf(request, fields.get(CSRF_FIELD) or request.headers.get("x-csrf-token"))
    response = done(request, "/sign-in")
    sign_out(response)
    return response
