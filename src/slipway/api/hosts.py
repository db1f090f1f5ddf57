"""Which names the control plane answers to: its defence against DNS rebinding.

A web page the developer opens can make its own name resolve to 127.0.0.1 (DNS
rebinding) and then call a server on this machine as if it were the page's own origin:
the browser sends the request, but with the page's name in ``Host``. With auth off
nothing else stands between that page and the admin API (creating an admin token, for
one), so only loopback names are answered, which no attacker's page can have. With auth
on, the bearer token guards every route (a browser never attaches it on its own), so any
name is answered unless ``server.allowed_hosts`` lists the names the server is reached
by; then only those (and loopback) are.

This is the outermost check: a refused request costs no admission slot, no body read,
no token lookup and no audit row.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from slipway.api.limits import reject
from slipway.core.errors import Forbidden
from slipway.core.net import host_name
from slipway.core.settings import LOOPBACK_HOSTS, ServerSettings

__all__ = ["HostCheck", "accepted_hosts"]


def accepted_hosts(server: ServerSettings) -> frozenset[str] | None:
    """The names ``server`` answers to, or ``None`` for any name (auth on, no list)."""
    if not server.allowed_hosts and server.auth:
        return None
    names = set(LOOPBACK_HOSTS) | set(server.allowed_hosts)
    if server.loopback:
        names.add(server.host.lower())
    return frozenset(names)


class HostCheck:
    """ASGI middleware answering 403 to a request whose ``Host`` is not accepted.

    A request without a ``Host`` header passes: browsers always send one, so its absence
    is not the attack (and a client that can omit it can as well send ``localhost``)."""

    def __init__(self, app: ASGIApp, *, accepted: frozenset[str] | None) -> None:
        self.app = app
        self.accepted = accepted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.accepted is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or ():
            if name == b"host":
                host = host_name(value)
                if host not in self.accepted:
                    await self._refuse(scope, send, host)
                    return
                break
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, host: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        message = (
            f"this server does not answer to the name {host!r}: address it as 127.0.0.1 or"
            " localhost, or list the name in server.allowed_hosts"
        )
        await reject(send, 403, Forbidden.code, message, details={"host": host})
