"""Who is looking at the console, and may they act: the signed-in token and CSRF tokens.

Signing in keeps the API token itself in an HttpOnly, SameSite=Strict cookie: scripts on a
page cannot read it and no other site's page sends it. Every state-changing request also
carries a CSRF token: an HMAC, under a key of this process, of a random value kept in a
second cookie (signed double submit). Another site can neither read that cookie nor compute
the HMAC, so a forged form is refused even with auth off, where the console still listens
for anyone on this machine whose browser visits a hostile page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from slipway.core.errors import Forbidden, InvalidInput, NotFound, SlipwayError
from slipway.core.workspace import ALL_WORKSPACES, DEFAULT_WORKSPACE, validate_workspace
from slipway.security.resources import grants_role, platform_admin
from slipway.security.tokens import Role
from slipway.services import Services

SESSION_COOKIE = "slipway_session"
CSRF_COOKIE = "slipway_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# The query parameter naming the workspace a page shows (absent: the default one).
WORKSPACE_PARAM = "ws"


class SignInRequired(SlipwayError):
    """No valid session cookie while auth is on: the console answers with the sign-in page."""

    status_code = 401
    code = "unauthenticated"


@dataclass(frozen=True)
class Viewer:
    """The person behind a console request, in the workspace the page shows."""

    name: str
    role: Role
    grants: tuple[str, ...]
    workspace: str
    signed_in: bool

    def may(self, needed: Role) -> bool:
        """Whether this viewer's role in the page's workspace allows ``needed``."""
        role = grants_role(self.role, self.grants, self.workspace)
        return role is not None and role.allows(needed)

    @property
    def platform_admin(self) -> bool:
        return platform_admin(self.role, self.grants)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _secret(request: Request) -> bytes:
    secret: bytes = request.app.state.console_secret
    return secret


def new_secret() -> bytes:
    """The key this process signs CSRF tokens with (a restart asks forms to be reloaded)."""
    return secrets.token_bytes(32)


def viewer(request: Request) -> Viewer:
    """The console's caller in the workspace named by ``?ws=`` (default: the default one):
    anonymous admin with auth off; with auth on, the token of the session cookie
    (:class:`SignInRequired` without one that verifies), 403 without a role in the
    workspace, 404 for a workspace that does not exist."""
    cached = getattr(request.state, "console_viewer", None)
    if isinstance(cached, Viewer):
        return cached
    services = services_of(request)
    raw = request.query_params.get(WORKSPACE_PARAM) or DEFAULT_WORKSPACE
    workspace = validate_workspace(raw, field=WORKSPACE_PARAM)
    if not services.settings.server.auth:
        found = Viewer("anonymous", Role.ADMIN, (ALL_WORKSPACES,), workspace, signed_in=False)
    else:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise SignInRequired("sign in with an API token to use the console")
        try:
            known = services.tokens.authenticate(token)
        except SlipwayError as refused:
            raise SignInRequired(refused.message) from refused
        found = Viewer(known.name, known.role, tuple(known.workspaces), workspace, signed_in=True)
        if grants_role(found.role, found.grants, workspace) is None:
            raise Forbidden(f"{found.name} has no role in workspace {workspace!r}")
    if workspace != DEFAULT_WORKSPACE and not services.workspaces.exists(workspace):
        raise NotFound(f"workspace {workspace!r} not found")
    request.state.console_viewer = found
    return found


def csrf_seed(request: Request) -> str:
    """This browser's CSRF seed: its cookie's value, or a new one that :func:`keep_seed`
    sets on the response."""
    seed = request.cookies.get(CSRF_COOKIE, "")
    if len(seed) < 32:
        seed = getattr(request.state, "console_new_seed", "") or secrets.token_urlsafe(32)
        request.state.console_new_seed = seed
    return seed


def csrf_token(request: Request) -> str:
    """The CSRF token a page's forms and scripts send back."""
    return hmac.new(_secret(request), csrf_seed(request).encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse (403) a state-changing request whose CSRF token is missing or wrong, or that
    another origin sent."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise Forbidden(f"cross-origin request from {origin} refused")
    seed = request.cookies.get(CSRF_COOKIE, "")
    expected = hmac.new(_secret(request), seed.encode(), hashlib.sha256).hexdigest()
    if len(seed) < 32 or not submitted or not hmac.compare_digest(expected, submitted):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")


def require(request: Request, needed: Role) -> Viewer:
    """The viewer, when their role in the page's workspace allows ``needed``, else 403."""
    found = viewer(request)
    if not found.may(needed):
        raise Forbidden(f"{found.name} has role {found.role} here; this needs {needed}")
    return found


def keep_seed(request: Request, response: Response) -> None:
    """Set the CSRF seed cookie when this request made a new one."""
    seed = getattr(request.state, "console_new_seed", "")
    if seed:
        response.set_cookie(
            CSRF_COOKIE,
            seed,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )


def sign_in(request: Request, response: Response, token: str) -> None:
    """Verify ``token`` (Unauthorized when it does not) and keep it in the session cookie."""
    if not token.strip():
        raise InvalidInput("enter an API token", field="token")
    services_of(request).tokens.authenticate(token.strip())
    response.set_cookie(
        SESSION_COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
