"""Slipway's identity in front of MLflow's tracking server and UI.

Every request but the liveness probe needs one of Slipway's API tokens when auth is on —
the same tokens and roles as the control plane and the gateway. MLflow's client sends it
with ``MLFLOW_TRACKING_TOKEN`` (``Authorization: Bearer``); a browser opening the UI is
asked for it by a Basic challenge (any user name, the token as the password). The token
is checked before the body is read. Then :mod:`slipway.api.tracking.policy` decides:
refused surfaces answer 403 whatever the role; reads need ``viewer`` and writes
``editor``; registry writes are answered by Slipway's registry
(:mod:`slipway.api.tracking.registry`); artifact uploads and experiment locations are
confined (:mod:`slipway.api.tracking.locations`). With auth off (loopback only) the caller
is the local ``anonymous`` admin and the same rules apply, so the two registries agree
either way.

Every refusal (reads included), registry-family writes and deletions are written to
Slipway's audit log with the caller; the high-volume logging of a run (metrics, params,
tags, artifacts) is not, as it is MLflow's own record already. Answers are in MLflow's error format
(``{"error_code", "message"}``), which MLflow's client shows as an ``MlflowException``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from slipway.api.limits import StatusCapture, read_bounded, replaying, send_json
from slipway.api.tracking import locations, registry
from slipway.api.tracking.policy import Access, Rule, normalize, rule_for
from slipway.core.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    SlipwayError,
)
from slipway.core.workspace import (
    ALL_WORKSPACES,
    DEFAULT_WORKSPACE,
    scoped_resource,
    validate_workspace,
)
from slipway.security.credentials import any_token
from slipway.security.resources import Role
from slipway.security.verified import VerifiedTokens
from slipway.services import Services

log = logging.getLogger("slipway.tracking.gate")

# Bodies the gate itself reads (registry calls, tags, experiment creation) are small JSON.
MAX_JSON_BYTES = 1024 * 1024
_ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_ALREADY_EXISTS",
    413: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}
MLFLOW_WORKSPACE_HEADER = b"x-mlflow-workspace"
_CHALLENGE = (b"www-authenticate", b'Basic realm="Slipway MLflow", charset="UTF-8"')
_ARTIFACT_PATH = re.compile(r"/api/2\.0/mlflow-artifacts/(?:artifacts|mpu/[a-z]+)/(.*)")
# Writes worth a line in the audit log besides every denial: the registry, experiments,
# and deletions or restorations of anything.
_AUDITED = re.compile(
    r"/api/2\.0/mlflow/(registered-models|model-versions|experiments)/.*"
    r"|.*/(delete|restore|delete-traces)(/.*)?"
)


@dataclass(frozen=True)
class Caller:
    name: str
    # The token's role in the workspace the request names (MLflow's ``X-MLFLOW-WORKSPACE``,
    # the default one without it); None where the token was granted none.
    role: Role | None
    workspace: str = DEFAULT_WORKSPACE
    # The workspaces the token was granted ("*": all), for the workspace list.
    grants: tuple[str, ...] = (ALL_WORKSPACES,)


def request_workspace(scope: Scope) -> str:
    """The workspace a request to MLflow names (``X-MLFLOW-WORKSPACE``, which MLflow's
    client sends for ``MLFLOW_WORKSPACE``), the default one when it names none."""
    for name, value in scope.get("headers") or ():
        if name == MLFLOW_WORKSPACE_HEADER:
            named = value.decode("latin-1").strip()
            return (
                validate_workspace(named, field="X-MLFLOW-WORKSPACE")
                if named
                else DEFAULT_WORKSPACE
            )
    return DEFAULT_WORKSPACE


def bind_workspace(workspace: str) -> None:
    """Tell MLflow's handlers the request's workspace, checked here already (it exists in
    Slipway and in MLflow's store), so that MLflow's own hook does not look it up in the
    database again on every request. A context variable of this request's task, which the
    handler's thread inherits."""
    from mlflow.utils.workspace_context import set_server_request_workspace

    set_server_request_workspace(workspace)


async def mlflow_error(
    send: Send, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send_json(
        send,
        status,
        {"error_code": _ERROR_CODES.get(status, "INTERNAL_ERROR"), "message": message},
        headers,
    )


async def read_json(scope: Scope, receive: Receive) -> tuple[bytes, dict[str, Any]]:
    """The request's body (bounded) and its JSON object merged over the query string's
    fields (MLflow's client sends DELETE fields in the body, browsers in the query)."""
    raw = await read_bounded(receive, MAX_JSON_BYTES)
    if raw is None:
        raise InvalidInput("the client went away", field="body")
    fields: dict[str, Any] = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise InvalidInput("the body is not JSON", field="body") from None
        if not isinstance(parsed, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        fields.update(parsed)
    return raw, fields


def check_same_origin(scope: Scope) -> None:
    """Refuse a state-changing request a browser sends from another site (CSRF).

    A browser that signed in to the UI attaches the Basic credentials to any request to
    this origin, a forged form post from another site's page included. Browsers say where
    a request comes from: ``Sec-Fetch-Site`` (cross-site) and ``Origin``, which must then
    name this server as the request's ``Host`` does. Clients that are not browsers send
    neither and are not affected."""
    headers = {name: value for name, value in scope.get("headers") or ()}
    if headers.get(b"sec-fetch-site", b"") == b"cross-site":
        raise Forbidden("cross-site requests may not change anything here")
    origin = headers.get(b"origin")
    if origin is None:
        return
    netloc = origin.split(b"://", 1)[-1]
    if origin == b"null" or netloc.lower() != headers.get(b"host", b"").lower():
        raise Forbidden(f"requests from {origin.decode('latin-1')!r} may not change anything here")


class TrackingGate:
    """ASGI middleware in front of MLflow's app; see the module's docstring."""

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services
        self.auth = services.settings.server.auth
        # Verified tokens are kept while no token changed (slipway.security.epoch): a
        # metric logged costs a dictionary lookup, and a revoked secret is still refused
        # from the moment the revocation returns.
        self.tokens = VerifiedTokens(
            services.tokens.authenticate, epoch=services.tokens.epoch.current
        )
        # A token lookup on SQLite (a local file, ~0.1 ms) costs less than handing it to a
        # thread and back (~0.3 ms), so it runs on the event loop; a database across a
        # network keeps it on a thread, where a slow answer holds no other request.
        self.inline_lookup = services.db.engine.dialect.name == "sqlite"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path = normalize(scope["path"])
        rule = rule_for(method, path)
        if rule.access is Access.PUBLIC or (
            method == "OPTIONS" and rule.access is not Access.REFUSED
        ):
            await self.app(scope, receive, send)
            return
        caller: Caller | None = None
        try:
            if method not in ("GET", "HEAD"):
                check_same_origin(scope)
            caller = await self._caller(scope)
            self._check(rule, caller)
            if caller.workspace != DEFAULT_WORKSPACE:
                await anyio.to_thread.run_sync(self._open_workspace, caller.workspace)
            bind_workspace(caller.workspace)
            if rule.access is Access.WORKSPACES:
                listed = await anyio.to_thread.run_sync(self._workspaces, path, caller)
                await send_json(send, 200, listed)
                return
            raw: bytes | None = None
            fields: dict[str, Any] = {}
            if rule.access in (Access.TAGS, Access.EXPERIMENT, Access.ROUTED):
                raw, fields = await read_json(scope, receive)
            if rule.access is Access.ROUTED:
                answer = await anyio.to_thread.run_sync(self._routed, rule.detail, fields, caller)
                await send_json(send, 200, answer)
                return
            if rule.access is Access.TAGS:
                registry.check_tag_keys(fields)
            elif rule.access is Access.EXPERIMENT:
                locations.check_experiment_location(fields)
            elif rule.access is Access.ARTIFACT:
                matched = _ARTIFACT_PATH.fullmatch(path)
                await anyio.to_thread.run_sync(
                    locations.check_artifact_write,
                    self.services.registry.mlflow.in_workspace(caller.workspace),
                    matched.group(1) if matched else "",
                )
        except SlipwayError as refused:
            if refused.status_code in (401, 403):  # every refusal, reads included
                await anyio.to_thread.run_sync(
                    self._audit, scope, caller, refused.status_code, refused.message
                )
            headers = (_CHALLENGE,) if refused.status_code == 401 else ()
            await mlflow_error(send, refused.status_code, refused.message, headers)
            return
        if raw is not None:
            receive = replaying(raw, receive)
        if method in ("GET", "HEAD") or not _AUDITED.fullmatch(path):
            await self.app(scope, receive, send)
            return
        await self._audited(scope, receive, send, caller)

    async def _caller(self, scope: Scope) -> Caller:
        workspace = request_workspace(scope)
        if not self.auth:
            return Caller("anonymous", Role.ADMIN, workspace)
        authorization = b""
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                authorization = value
                break
        token = any_token(authorization.decode("latin-1"))
        found = self.tokens.cached(token)
        if found is None and self.inline_lookup:
            found = self.tokens.verify(token)
        elif found is None:
            found = await anyio.to_thread.run_sync(self.tokens.verify, token)
        return Caller(found.name, found.role_in(workspace), workspace, tuple(found.workspaces))

    @staticmethod
    def _check(rule: Rule, caller: Caller) -> None:
        if rule.access is Access.REFUSED:
            raise Forbidden(rule.detail)
        if caller.role is None and rule.access is not Access.WORKSPACES:
            raise Forbidden(f"{caller.name} has no role in workspace {caller.workspace!r}")
        needed = rule.role
        if needed is not None and caller.role is not None and not caller.role.allows(needed):
            raise Forbidden(f"{caller.name} has role {caller.role}; this needs {needed}")

    def _open_workspace(self, workspace: str) -> None:
        """A workspace other than the default must be one of Slipway's (404 otherwise),
        and is then made MLflow's too if it is not yet (once a process)."""
        store = self.services.registry.mlflow.in_workspace(workspace)
        if store.has_workspace():
            return
        if not self.services.workspaces.exists(workspace):
            raise NotFound(f"workspace {workspace!r} not found")
        store.ensure_workspace()

    def _workspaces(self, path: str, caller: Caller) -> dict[str, Any]:
        """MLflow's workspace list (``GET .../workspaces``) or one workspace
        (``.../workspaces/<name>``): those of Slipway's the caller was granted."""
        granted = self.services.workspaces.list(None if not self.auth else caller.grants)
        listed = [{"name": w.name, "description": w.description} for w in granted]
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name == "workspaces":
            return {"workspaces": listed}
        for workspace in listed:
            if workspace["name"] == name:
                return {"workspace": workspace}
        raise NotFound(f"workspace {name!r} not found")

    def _routed(self, operation: str, fields: dict[str, Any], caller: Caller) -> dict[str, Any]:
        handler: Callable[..., dict[str, Any]] = registry.ROUTED[operation]
        return handler(self.services.registry.in_workspace(caller.workspace), fields, caller.name)

    async def _audited(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> None:
        async def record(status: int) -> None:
            await anyio.to_thread.run_sync(self._audit, scope, caller, status, "")

        capture = StatusCapture(send, before_end=record)
        try:
            await self.app(scope, receive, capture)
        finally:
            await capture.end()

    def _audit(self, scope: Scope, caller: Caller | None, status: int, message: str) -> None:
        outcome = "success" if status < 400 else ("denied" if status in (401, 403) else "failure")
        details: dict[str, Any] = {"client": (scope.get("client") or ["?"])[0]}
        if message:
            details["reason"] = message
        # A request in another workspace is that workspace's entry (its auditors read it,
        # the default workspace's do not), as on the control plane.
        workspace, resource = caller.workspace if caller else DEFAULT_WORKSPACE, scope["path"]
        if workspace != DEFAULT_WORKSPACE:
            resource = scoped_resource(workspace, resource.lstrip("/"))
        try:
            self.services.audit.record(
                actor=caller.name if caller else "unauthenticated",
                action=f"mlflow {scope['method']} {normalize(scope['path'])}",
                resource=resource,
                outcome=outcome,
                status_code=status,
                details=details,
            )
        except Exception:  # never turn an answer into an error over its audit line
            log.exception("could not write the audit record for %s", scope["path"])
