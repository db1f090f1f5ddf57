"""Who is calling, and may they: bearer tokens mapped to roles.

Reads (GET, HEAD) need ``viewer`` (any role); changes need ``editor``, except approvals
(``approver``), endpoints and aliases (``deployer``), the audit log (``auditor``), and
tokens and settings (``admin``); see :class:`~slipway.security.resources.Role`. With auth
off (allowed only on loopback, see
:func:`check_bind_safety`, and only by loopback names, see :mod:`slipway.api.hosts`)
every caller is the local ``anonymous`` admin. :class:`TokenGate` checks the token of a
request with a body before anything reads the body.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import anyio.to_thread
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from slipway.api import API_PREFIX
from slipway.api.limits import reject
from slipway.core.errors import Forbidden, InvalidInput, NotFound, SlipwayError
from slipway.core.settings import ServerSettings
from slipway.core.workspace import (
    ALL_WORKSPACES,
    DEFAULT_WORKSPACE,
    WORKSPACE_HEADER,
    validate_workspace,
)
from slipway.features.store import FeatureStore
from slipway.security.credentials import bearer_token
from slipway.security.resources import grants_role, platform_admin
from slipway.security.tokens import Role
from slipway.services import Services

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Marks a POST route that only reads (lookups with a body): viewers may call it and the
# audit log skips it. Pass as ``openapi_extra=READ_ONLY`` with ``authorize(Role.VIEWER)``.
READ_ONLY: dict[str, object] = {"x-slipway-read-only": True}
# Marks a route that needs a role of its own (approvals: approver; aliases: deployer),
# whatever its router's dependency says; also shown in the OpenAPI document.
ROLE_KEY = "x-slipway-role"


def needs(role: Role) -> dict[str, object]:
    """``openapi_extra`` for a route that needs ``role``."""
    return {ROLE_KEY: role.value}


# The request state's key for the caller (set by TokenGate or authorize; the audit reads it).
PRINCIPAL = "principal"


# The request state's key for the workspace a request acts in (set by authorize).
WORKSPACE = "workspace"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    # Where the role holds ("*": every workspace); said by whoever makes one, never assumed.
    workspaces: tuple[str, ...]
    token_id: str | None = None

    def role_in(self, workspace: str) -> Role | None:
        return grants_role(self.role, self.workspaces, workspace)

    @property
    def platform_admin(self) -> bool:
        return platform_admin(self.role, self.workspaces)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def verify(services: Services, token: str) -> Principal:
    """The caller ``token`` stands for (one database read), else :class:`Unauthorized`."""
    found = services.tokens.authenticate(token)
    return Principal(found.name, found.role, tuple(found.workspaces), found.id)


def authenticate(request: Request) -> Principal:
    """The caller behind the request's bearer token (or anonymous when auth is off); the
    one :class:`TokenGate` verified already, if it did."""
    services = services_of(request)
    if not services.settings.server.auth:
        return Principal("anonymous", Role.ADMIN, (ALL_WORKSPACES,))
    verified = getattr(request.state, PRINCIPAL, None)
    if isinstance(verified, Principal):
        return verified
    return verify(services, bearer_token(request.headers.get("authorization", "")))


def request_workspace(request: Request) -> str:
    """The workspace a request names in its ``X-Slipway-Workspace`` header; the default
    workspace when it names none (400 naming the header when it is not a name)."""
    value = request.headers.get(WORKSPACE_HEADER)
    if value is None or value == "":
        return DEFAULT_WORKSPACE
    return validate_workspace(value, field=WORKSPACE_HEADER)


def authorize(
    minimum: Role | None = None,
    *,
    writes: Role = Role.EDITOR,
    platform: bool = False,
    scoped: bool = False,
) -> Callable[[Request], Principal]:
    """A dependency checking the caller's role in the request's workspace: ``minimum``,
    else ``viewer`` for reads and ``writes`` (``editor`` unless the router says, e.g.
    ``deployer`` for endpoints) for changes.

    ``platform``: the route manages the platform itself (tokens, workspaces, settings),
    which only an admin of every workspace may change. ``scoped``: the route keeps its
    resources per workspace; a route that does not yet answers for the default workspace
    only, and refuses a request naming another (400) rather than show it the default's."""

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        setattr(request.state, PRINCIPAL, principal)
        workspace = request_workspace(request)
        declared = (getattr(request.scope.get("route"), "openapi_extra", None) or {}).get(ROLE_KEY)
        needed = (
            Role(declared)
            if declared
            else minimum or (Role.VIEWER if request.method in SAFE_METHODS else writes)
        )
        if platform:
            if needed is not Role.VIEWER and not principal.platform_admin:
                raise Forbidden(
                    f"{principal.name} is not an admin of every workspace; this changes the"
                    " platform itself"
                )
            if not principal.role.allows(needed):
                raise Forbidden(f"{principal.name} has role {principal.role}; this needs {needed}")
            setattr(request.state, WORKSPACE, workspace)
            return principal
        role = principal.role_in(workspace)
        if role is None:
            raise Forbidden(f"{principal.name} has no role in workspace {workspace!r}")
        if not role.allows(needed):
            raise Forbidden(f"{principal.name} has role {role}; this needs {needed}")
        if workspace != DEFAULT_WORKSPACE:
            if not services_of(request).workspaces.exists(workspace):
                raise NotFound(f"workspace {workspace!r} not found")
            if not scoped:
                raise InvalidInput(
                    f"{request.url.path} answers for the default workspace only: its"
                    " resources are not kept per workspace yet",
                    field=WORKSPACE_HEADER,
                )
        setattr(request.state, WORKSPACE, workspace)
        return principal

    return dependency


def workspace_of(request: Request) -> str:
    """The workspace :func:`authorize` let the request act in."""
    workspace: str = getattr(request.state, WORKSPACE, DEFAULT_WORKSPACE)
    return workspace


def feature_store(request: Request) -> FeatureStore:
    """The feature store of the request's workspace."""
    return services_of(request).features.in_workspace(workspace_of(request))


class TokenGate:
    """ASGI middleware refusing, with auth on, a request that carries a body to a route
    that needs a token, unless its bearer token verifies: 401 before the body is read.

    Without it the limits (:class:`~slipway.api.limits.RequestLimits`) and FastAPI's
    parsing would read and parse up to ``server.max_body_bytes`` for anyone who can
    connect. A request without a body has nothing to read before the route's own check
    (:func:`authorize`), which answers it as before (an unknown path keeps its 404). The
    caller verified here is kept in the request's state, where :func:`authenticate` finds
    it, so a request still costs one token lookup; roles are checked by the routes."""

    def __init__(self, app: ASGIApp, *, services: Services, public: Collection[str]) -> None:
        self.app = app
        self.services = services
        self.public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.services.settings.server.auth
            or scope["path"] in self.public
            or not scope["path"].startswith(API_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        authorization = b""
        has_body = False
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                has_body = has_body or value.strip() != b"0"
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(authorization.decode("latin-1"))
            principal = await anyio.to_thread.run_sync(verify, self.services, token)
        except SlipwayError as refused:
            headers = [(k.lower().encode(), v.encode()) for k, v in refused.http_headers().items()]
            await reject(
                send,
                refused.status_code,
                refused.code,
                refused.message,
                details=refused.details,
                headers=headers,
            )
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        await self.app(scope, receive, send)


def check_bind_safety(server: ServerSettings) -> None:
    """Refuse to serve beyond this machine without authentication."""
    if not server.loopback and not server.auth:
        raise InvalidInput(
            f"refusing to listen on {server.host} without authentication: anyone who can"
            " reach this address could change the platform. Enable auth"
            " (SLIPWAY_SERVER__AUTH=true, then create tokens with `slipway tokens create`)"
            " or bind to 127.0.0.1.",
            field="server.host",
        )
