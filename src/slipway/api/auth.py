"""Who is calling, and may they: bearer tokens mapped to roles.

Reads (GET, HEAD) need ``viewer``; everything else needs ``editor``; routers for tokens
and settings demand ``admin``. With auth off (allowed only on loopback, see
:func:`check_bind_safety`) every caller is the local ``anonymous`` admin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from slipway.core.errors import Forbidden, InvalidInput, Unauthorized
from slipway.core.settings import ServerSettings
from slipway.security.tokens import Role
from slipway.services import Services

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Marks a POST route that only reads (lookups with a body): viewers may call it and the
# audit log skips it. Pass as ``openapi_extra=READ_ONLY`` with ``authorize(Role.VIEWER)``.
READ_ONLY: dict[str, object] = {"x-slipway-read-only": True}


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    token_id: str | None = None


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def authenticate(request: Request) -> Principal:
    """The caller behind the request's bearer token (or anonymous when auth is off)."""
    services = services_of(request)
    if not services.settings.server.auth:
        return Principal("anonymous", Role.ADMIN)
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized("this route needs an API token: send 'Authorization: Bearer <token>'")
    token = services.tokens.authenticate(credentials.strip())
    return Principal(token.name, token.role, token.id)


def authorize(minimum: Role | None = None) -> Callable[[Request], Principal]:
    """A dependency checking the caller's role: ``minimum``, or viewer/editor by method."""

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        request.state.principal = principal
        needed = minimum or (Role.VIEWER if request.method in SAFE_METHODS else Role.EDITOR)
        if not principal.role.allows(needed):
            raise Forbidden(f"{principal.name} has role {principal.role}; this needs {needed}")
        return principal

    return dependency


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
