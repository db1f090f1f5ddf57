"""The audit log: every mutation, who made it, on what, when, and how it ended.

The control plane records each non-read request here (denied ones included). Each
capability service records the changes it makes itself (``feature_group.create``,
``pipeline.start``, ``endpoint.update``...), whichever face called it, with the actor the
face names: the token's holder over HTTP, ``cli:<user>`` from the CLI, and
:func:`local_actor` (``local:<user>``) for code that calls a service in process without
naming one (the embedded SDK). Processes acting on their own name themselves
(``scheduler``, ``deployment-controller``).

A service that changes the metadata database records the entry in the same transaction
(``session``), so a change and its entry commit or roll back together; a change outside
the database (an artifact, the online store, MLflow) is recorded once it is made, and a
failure to record raises, as any failure to reach the database does.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.resource import Listing
from slipway.core.workspace import ALL_WORKSPACES, DEFAULT_WORKSPACE
from slipway.security.resources import AuditEntry
from slipway.security.tables import AuditRow


def local_user() -> str:
    """The operating-system user running this process (its uid where no name is known,
    as in a container without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def local_actor() -> str:
    """The actor of a change made in process without naming one: ``local:<user>``."""
    return f"local:{local_user()}"


def _utc(moment: datetime) -> datetime:
    """``moment`` as an aware time: a naive one is taken as UTC, as Slipway stores times."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class AuditLog:
    """Append-only record of mutations: nothing here (or in any face) edits or deletes an
    entry; only the retention policy (:mod:`slipway.retention`) removes old ones."""

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
        session: Session | None = None,
    ) -> AuditEntry:
        """Append one entry. Pass ``session`` to commit it atomically with the caller's
        own change (it is then written only if the change is)."""
        row = AuditRow(
            time=utcnow(),
            actor=actor[:255],
            action=action[:255],
            resource=resource[:1024],
            outcome=outcome,
            status_code=status_code,
            details=details or {},
        )
        if session is not None:
            session.add(row)
            session.flush()
            return AuditEntry.model_validate(row)
        with self._db.session() as own:
            own.add(row)
            own.flush()
            return AuditEntry.model_validate(row)

    def changed(
        self,
        actor: str | None,
        action: str,
        resource: str,
        details: dict[str, Any] | None = None,
        *,
        session: Session | None = None,
    ) -> AuditEntry:
        """Record a change a service made (outcome ``success``): ``actor`` None is this
        process's user (:func:`local_actor`); ``details`` stay small and hold no secret."""
        return self.record(
            actor=actor or local_actor(),
            action=action,
            resource=resource,
            outcome="success",
            details=details,
            session=session,
        )

    def list(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        workspaces: Collection[str] | None = None,
        resource: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Listing[AuditEntry]:
        """Newest first; page backwards with ``before`` (an entry id). ``workspaces``:
        only the entries of those workspaces' resources (None or ``"*"``: all).
        ``actor`` is matched exactly, ``action`` and ``resource`` as substrings (a ``%``
        or ``_`` in ``resource`` is itself, not a wildcard); ``since``/``until`` keep the
        entries recorded at or after / before those times (naive ones are UTC), so a
        person can ask "who touched fraud-model last Tuesday" without paging the log."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if workspaces is not None and ALL_WORKSPACES not in workspaces:
            scopes = [
                ~AuditRow.resource.startswith("workspaces/")
                if workspace == DEFAULT_WORKSPACE
                else AuditRow.resource.startswith(f"workspaces/{workspace}/", autoescape=True)
                for workspace in workspaces
            ]
            query = query.where(or_(*scopes) if scopes else false())
        if before is not None:
            query = query.where(AuditRow.id < before)
        if actor is not None:
            query = query.where(AuditRow.actor == actor)
        if action is not None:
            query = query.where(AuditRow.action.contains(action))
        if resource is not None:
            query = query.where(AuditRow.resource.contains(resource, autoescape=True))
        if since is not None:
            query = query.where(AuditRow.time >= _utc(since))
        if until is not None:
            query = query.where(AuditRow.time < _utc(until))
        with self._db.session() as session:
            return Listing(AuditEntry.model_validate(row) for row in session.scalars(query))
