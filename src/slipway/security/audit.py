"""The audit log: every mutation, who made it, on what, when, and how it ended.

The control plane records each non-read request here (denied ones included), and
services may record domain actions (an approval, a rollback) with richer details.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.resource import Listing
from slipway.security.resources import AuditEntry
from slipway.security.tables import AuditRow


class AuditLog:
    """Append-only record of mutations."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        row = AuditRow(
            time=utcnow(),
            actor=actor[:255],
            action=action[:255],
            resource=resource[:1024],
            outcome=outcome,
            status_code=status_code,
            details=details or {},
        )
        with self._db.session() as session:
            session.add(row)
            session.flush()
            return AuditEntry.model_validate(row)

    def list(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> Listing[AuditEntry]:
        """Newest first; page backwards with ``before`` (an entry id)."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AuditRow.id < before)
        if actor is not None:
            query = query.where(AuditRow.actor == actor)
        if action is not None:
            query = query.where(AuditRow.action.contains(action))
        with self._db.session() as session:
            return Listing(AuditEntry.model_validate(row) for row in session.scalars(query))
