"""API tokens as resources: what :class:`~slipway.security.tokens.TokenService` returns,
the REST API sends and accepts, the remote client decodes and the CLI prints."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from slipway.core.clock import utcnow
from slipway.core.resource import Resource
from slipway.core.workspace import ALL_WORKSPACES, DEFAULT_WORKSPACE, split_scoped

# The longest lifetime a token may be given: a longer one is a token that never expires
# by another name, and would overflow a datetime long before that.
MAX_EXPIRES_IN = timedelta(days=3650)
# In a token's ``invoke`` list: every endpoint, present and future.
INVOKE_ALL = "*"


class Role(StrEnum):
    """What a token may do, with segregation of duties: the person who trains and
    registers a model (``editor``) is not by that role the one who approves it
    (``approver``) or puts it in front of traffic (``deployer``), and the audit log is
    read by ``auditor`` (and ``admin``), not by every viewer. Every role reads the
    platform's resources; ``admin`` may do everything (tokens, settings included)."""

    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    DEPLOYER = "deployer"
    AUDITOR = "auditor"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` is needed for: the same role, any
        role for ``viewer``'s reads, anything for ``admin``."""
        return self is needed or self is Role.ADMIN or needed is Role.VIEWER


class Token(Resource):
    """A token's public description; the secret is never stored or returned again."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "role",
        "created_at",
        "created_by",
        "revoked_at",
        "expires_at",
        "last_used_at",
        "workspaces",
        "invoke",
    )

    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    # Written at most once a minute per token, so it can lag the last use by that much.
    last_used_at: datetime | None = None
    # None: never expires. A token past it is refused like an unknown one.
    expires_at: datetime | None = None
    # The endpoints this token may invoke through the gateway; "*" for all. An admin
    # token may invoke every endpoint whatever this says.
    invoke: list[str] = Field(default_factory=list)
    # The workspaces the role holds in ("*": every one, present and future).
    workspaces: list[str] = Field(default_factory=lambda: [DEFAULT_WORKSPACE])

    def may_invoke(self, endpoint: str) -> bool:
        """Whether the gateway serves this token's requests to ``endpoint``, a scoped
        name (``<workspace>/<name>``, the bare name in the default workspace): the token
        holds a role in its workspace and is granted it by name, or every endpoint
        (``"*"``: of every workspace it holds a role in), or is that workspace's admin."""
        role = self.role_in(split_scoped(endpoint)[0])
        if role is None:
            return False
        return role is Role.ADMIN or INVOKE_ALL in self.invoke or endpoint in self.invoke

    def role_in(self, workspace: str) -> Role | None:
        """The token's role in ``workspace``; None where it was granted none."""
        return grants_role(self.role, self.workspaces, workspace)

    @property
    def active(self) -> bool:
        """Not revoked (an expired token is still active: :attr:`expired` tells)."""
        return self.revoked_at is None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()


def grants_role(role: Role, workspaces: list[str] | tuple[str, ...], workspace: str) -> Role | None:
    """``role`` if ``workspaces`` (a token's grants) reach ``workspace``, else None."""
    return role if ALL_WORKSPACES in workspaces or workspace in workspaces else None


def platform_admin(role: Role, workspaces: list[str] | tuple[str, ...]) -> bool:
    """Whether a token manages the platform itself (tokens, workspaces, settings): an
    admin in every workspace. An admin of some workspaces only administers what is in
    them; granting tokens would let it reach beyond them."""
    return role is Role.ADMIN and ALL_WORKSPACES in workspaces


class CreatedToken(Token):
    """A new token with its secret: the REST answer to a create, the only one that
    carries the secret (the Python API returns ``(token, secret)``)."""

    token: str = Field(description="the secret; shown only in this response")


def _expires_in_field() -> Any:
    # Seconds, as OAuth 2's ``expires_in`` (RFC 6749); the same name as the Python API's
    # ``expires_in`` (a timedelta), so a refusal names the same field on every face.
    return Field(
        None,
        gt=0,
        le=MAX_EXPIRES_IN.total_seconds(),
        description="seconds until the token expires (at most 10 years); absent: never",
    )


class TokenCreate(BaseModel):
    """The body of a create: unknown fields are errors naming them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="a resource name: lower-case letters, digits, - and _")
    role: Role = Role.VIEWER
    expires_in: float | None = _expires_in_field()
    invoke: list[str] = Field(
        default_factory=list,
        description='endpoints the token may invoke through the gateway ("*": all)',
    )
    workspaces: list[str] | None = Field(
        None,
        description='the workspaces the role holds in ("*": all); absent: the default'
        " workspace, or every workspace for an admin",
    )


class TokenInvoke(BaseModel):
    """The body of a grant: the endpoints the token may invoke from now on (replacing
    what it could before; empty: none)."""

    model_config = ConfigDict(extra="forbid")

    endpoints: list[str] = Field(description='endpoint names, or "*" for all')


class TokenRotate(BaseModel):
    """The (optional) body of a rotate: a new lifetime from now; absent, the token keeps
    its expiry."""

    model_config = ConfigDict(extra="forbid")

    expires_in: float | None = _expires_in_field()


class AuditEntry(Resource):
    """One mutation: who made it, on what, when, and how it ended."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "time",
        "actor",
        "action",
        "resource",
        "outcome",
        "status_code",
    )

    id: int
    time: datetime
    actor: str
    action: str
    resource: str
    outcome: str
    status_code: int | None
    details: dict[str, Any]


class Workspace(Resource):
    """A team's share of the platform: its resources, names unique within it."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "description",
        "model_formats",
        "created_at",
        "created_by",
    )

    name: str
    description: str = ""
    created_at: datetime
    created_by: str
    # The flavor/serialization patterns its models may be in, within the platform's
    # (registry.allowed_model_formats); None: the platform's policy alone.
    model_formats: list[str] | None = None


class ModelFormatsUpdate(BaseModel):
    """The body of a workspace's model format policy: patterns, or null for the
    platform's. Unknown fields are errors naming them."""

    model_config = ConfigDict(extra="forbid")

    model_formats: list[str] | None


class WorkspaceCreate(BaseModel):
    """The body of a create: unknown fields are errors naming them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="a resource name: lower-case letters, digits, - and _")
    description: str = Field("", max_length=1000)


__all__ = [
    "MAX_EXPIRES_IN",
    "AuditEntry",
    "CreatedToken",
    "Role",
    "Token",
    "TokenCreate",
    "TokenRotate",
    "Workspace",
    "WorkspaceCreate",
]
