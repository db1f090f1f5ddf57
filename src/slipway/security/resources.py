"""API tokens as resources: what :class:`~slipway.security.tokens.TokenService` returns,
the REST API sends and accepts, the remote client decodes and the CLI prints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from slipway.core.resource import Resource


class Role(StrEnum):
    """Roles in increasing power: each includes everything the previous one may do."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class Token(Resource):
    """A token's public description; the secret is never stored or returned again."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "role",
        "created_at",
        "created_by",
        "revoked_at",
    )

    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class CreatedToken(Token):
    """A new token with its secret: the REST answer to a create, the only one that
    carries the secret (the Python API returns ``(token, secret)``)."""

    token: str = Field(description="the secret; shown only in this response")


class TokenCreate(BaseModel):
    """The body of a create: unknown fields are errors naming them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="a resource name: lower-case letters, digits, - and _")
    role: Role = Role.VIEWER


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


__all__ = ["AuditEntry", "CreatedToken", "Role", "Token", "TokenCreate"]
