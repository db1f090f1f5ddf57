"""Who may call the gateway: the platform's tokens, and per endpoint an ``invoke`` grant.

With ``server.auth`` on, every route but the liveness and discovery ones (``/ping``,
``/v2``, ``/v2/health/*``, ``/openapi.json``) needs ``Authorization: Bearer <token>``,
the same tokens as the control plane and the tracking server. Calling an endpoint
(SageMaker invocations, explanations, every ``/v2/models/{name}/...`` route) needs a token
granted ``invoke`` on it (or ``"*"``; a workspace's admins may call its every one), so a
service's token calls only the endpoints it was given (``slipway tokens create svc
--invoke churn``; ``team-a/churn`` for workspace ``team-a``'s, which the gateway serves
under ``/workspaces/team-a/...``). The Prometheus metrics and online features under a
workspace's prefix need a token holding a role in it. Tokens are verified through
:class:`~slipway.security.verified.VerifiedTokens`, kept while no token changes (a
revocation, rotation or new grant is refused or honoured from the moment it returns), so
auth costs a dictionary lookup per request, not a database read.

With auth off the gateway stays on loopback (``check_bind``) and answers loopback
``Host`` names only; with auth on it may listen anywhere and answers any name, or only
``server.allowed_hosts`` (and loopback) when that is set.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable
from typing import Any

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Forbidden, SlipwayError
from slipway.core.net import host_name
from slipway.core.settings import LOOPBACK_HOSTS, Settings
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_name
from slipway.security.credentials import bearer_token
from slipway.security.epoch import TokenEpoch
from slipway.security.resources import Token
from slipway.security.tokens import TokenService
from slipway.security.verified import VerifiedTokens, key_of
from slipway.serving.gateway.asgi import Scope
from slipway.serving.gateway.denials import Denials

PUBLIC_PATHS = frozenset({"/ping", "/openapi.json", "/v2", "/v2/health/live", "/v2/health/ready"})
# A scope key the gateway's HTTP server sets: a dict kept per connection, where the check
# keeps its last grant (the same Authorization bytes, route and workspace, under the same
# token epoch, reuse it for at most REUSE_SECONDS). Other servers (uvicorn) leave it out.
CONNECTION_STATE = "slipway.connection"
REUSE_SECONDS = 1.0


def endpoint_of(path: str) -> str | None:
    """The endpoint a request calls, from its path; None for routes of no endpoint."""
    if path.startswith("/endpoints/"):
        name, _, rest = path[len("/endpoints/") :].partition("/")
        return name if rest in ("invocations", "explain") else None
    if path.startswith("/v2/models/"):
        return path[len("/v2/models/") :].split("/", 1)[0] or None
    return None


class GatewayAccess:
    """The Host check and, with auth on, the token and grant check of one request."""

    def __init__(self, settings: Settings, db: Database) -> None:
        server = settings.server
        self.enabled = server.auth
        self.hosts: frozenset[str] | None = (
            None
            if server.auth and not server.allowed_hosts
            else LOOPBACK_HOSTS | frozenset(server.allowed_hosts)
        )
        self.denials = Denials(db)
        epoch = TokenEpoch.for_database(db, settings.home)
        self.epoch = epoch.current
        self.tokens = VerifiedTokens(
            TokenService(db, epoch=epoch).authenticate, epoch=epoch.current
        )

    def check(
        self, scope: Scope, path: str, workspace: str = DEFAULT_WORKSPACE
    ) -> Awaitable[None] | None:
        """Check a request for ``path`` in ``workspace`` (the gateway's route once its
        ``/workspaces/<ws>`` prefix is taken off). Raise :class:`Forbidden` (a refused
        name or grant) or ``Unauthorized``; each refusal is kept for the audit log
        (:mod:`~slipway.serving.gateway.denials`).

        Decided here, without a coroutine, when the token was verified in the last seconds
        (nearly every request): None. A token not yet verified needs a database read,
        which must not block the event loop: then the awaitable that reads it and decides.
        """
        try:
            authorization = self._authorization(scope)
            if not self.enabled or path in PUBLIC_PATHS:
                return None
            connection = scope.get(CONNECTION_STATE)
            if connection is not None and self._granted_before(
                connection, authorization, path, workspace
            ):
                return None
            # Read before the lookup: a grant is remembered under the epoch the cached token
            # was checked against, so a change racing this request makes the next decide
            # again (a grant is never reused under an epoch newer than its token's).
            epoch = self.epoch()
            # Looked up by the digest of the header as it came: a token verified in the
            # last seconds costs a hash and a dictionary read, nothing decoded or parsed.
            key = key_of(authorization)
            token = self.tokens.lookup(key)
        except SlipwayError as refused:
            self._refused(scope, refused, None)
            raise
        if token is None:
            return self._verify(scope, path, workspace, authorization, key)
        self._decide(scope, token, path, workspace)
        if connection is not None and epoch is not None:
            until = time.monotonic() + REUSE_SECONDS
            connection["grant"] = (
                authorization, path, workspace, epoch, until, token.expires_at,
            )  # fmt: skip
        return None

    def _granted_before(
        self, connection: dict[str, Any], authorization: bytes, path: str, workspace: str
    ) -> bool:
        """Whether this connection's last grant holds for this request: the same header
        bytes, route and workspace, the token epoch unmoved (a revocation, rotation or
        new grant anywhere moves it), within :data:`REUSE_SECONDS` of the decision (which
        the verified-token cache's own window holds), the token not expired."""
        last = connection.get("grant")
        if last is None:
            return False
        granted_auth, granted_path, granted_workspace, epoch, until, expires_at = last
        if (
            authorization != granted_auth
            or path != granted_path
            or workspace != granted_workspace
            or epoch is None
            or self.epoch() != epoch
            or time.monotonic() > until
        ):
            return False
        if expires_at is not None and expires_at <= utcnow():
            connection.pop("grant", None)
            return False
        return True

    async def _verify(
        self, scope: Scope, path: str, workspace: str, authorization: bytes, key: bytes
    ) -> None:
        """Verify the token off the event loop (a database read), then decide."""
        try:
            secret = bearer_token(authorization.decode("latin-1"))
            loop = asyncio.get_running_loop()
            token = await loop.run_in_executor(
                None, functools.partial(self.tokens.verify, secret, key=key)
            )
        except SlipwayError as refused:
            self._refused(scope, refused, None)
            raise
        self._decide(scope, token, path, workspace)

    def _authorization(self, scope: Scope) -> bytes:
        """The request's ``Authorization`` value (empty without one), after the Host
        check."""
        authorization = b""
        for name, value in scope["headers"]:
            if name == b"host" and self.hosts is not None and host_name(value) not in self.hosts:
                # DNS rebinding: a page that made its own name resolve here is refused.
                raise Forbidden(
                    "the gateway answers to 127.0.0.1 and localhost only (and the names"
                    " in server.allowed_hosts)"
                )
            if name == b"authorization":
                authorization = value
        return authorization

    def _decide(self, scope: Scope, token: Token, path: str, workspace: str) -> None:
        """Whether the verified ``token`` may make this request: an ``invoke`` grant for
        an endpoint's routes, a role in ``workspace`` for the rest."""
        endpoint = endpoint_of(path)
        if endpoint is not None:
            scoped = scoped_name(workspace, endpoint)
            if token.may_invoke(scoped):  # granted, in the endpoint's workspace
                return
            refused = Forbidden(f"token {token.name!r} may not invoke endpoint {scoped!r}")
        elif token.role_in(workspace) is not None:
            return
        else:
            # A workspace's metrics and features are its members'.
            refused = Forbidden(f"token {token.name!r} has no role in workspace {workspace!r}")
        self._refused(scope, refused, token.name)
        raise refused

    def _refused(self, scope: Scope, refused: SlipwayError, actor: str | None) -> None:
        if refused.status_code in (401, 403):
            self.denials.offer(scope, refused.status_code, refused.message, actor)
