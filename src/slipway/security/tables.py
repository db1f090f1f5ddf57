"""The security capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base
from slipway.core.db.types import BigIntPK


class ApiTokenRow(Base):
    """An API token; only the SHA-256 of its secret is stored."""

    __tablename__ = "slipway_api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    # None: the token never expires.
    expires_at: Mapped[datetime | None]
    # The endpoints the token may invoke through the gateway ("*": all); admins may all.
    invoke: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The workspaces the role holds in ("*": all).
    workspaces: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["default"])


class WorkspaceRow(Base):
    """A workspace; ``default`` is created with the schema and always exists."""

    __tablename__ = "slipway_workspaces"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    # The model formats the workspace loads, within the platform's
    # (registry.allowed_model_formats); None: the platform's alone.
    model_formats: Mapped[list[str] | None] = mapped_column(JSON, default=None)


class AuditRow(Base):
    """One mutation: who did what to which resource, when, and how it ended."""

    __tablename__ = "slipway_audit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(1024))
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    details: Mapped[dict[str, Any]]
