"""Workspaces as a service: create, list and describe the teams' shares of the platform.

The default workspace is made with the schema and cannot be removed. A workspace is
created by a platform admin (an admin in every workspace) and then granted to tokens
(``TokenService.create(workspaces=...)``); the capabilities keep their resources in it.
Creating one is audited (``workspaces.create``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.core.settings import check_model_formats
from slipway.core.workspace import ALL_WORKSPACES, validate_workspace
from slipway.security.audit import AuditLog, local_actor
from slipway.security.resources import Workspace
from slipway.security.tables import WorkspaceRow

MAX_DESCRIPTION = 1000


def missing_workspaces(session: Session, names: Iterable[str]) -> list[str]:
    """Those of ``names`` (``"*"`` aside) no workspace has, sorted."""
    wanted = {name for name in names if name != ALL_WORKSPACES}
    if not wanted:
        return []
    found = set(session.scalars(select(WorkspaceRow.name).where(WorkspaceRow.name.in_(wanted))))
    return sorted(wanted - found)


def workspace_model_formats(db: Database, name: str) -> list[str] | None:
    """Workspace ``name``'s own model format policy; ``None``: the platform's alone (or
    no such workspace). Read from the database at each call, so a narrowed policy holds
    from the next check on."""
    with db.session() as session:
        row = session.get(WorkspaceRow, name)
        return list(row.model_formats) if row is not None and row.model_formats else None


def workspace_names(db: Database) -> list[str]:
    """Every workspace's name, sorted: what work done for each workspace walks."""
    with db.session() as session:
        return sorted(session.scalars(select(WorkspaceRow.name)))


class WorkspaceService:
    """The platform's workspaces."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self._db = db
        self._audit = audit or AuditLog(db)

    def create(self, name: str, description: str = "", *, actor: str | None = None) -> Workspace:
        """A new, empty workspace (409 if the name is taken)."""
        validate_workspace(name, field="name")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidInput(
                f"description must be text of at most {MAX_DESCRIPTION} characters",
                field="description",
            )
        actor = actor or local_actor()
        try:
            with self._db.write() as session:
                if session.get(WorkspaceRow, name) is not None:
                    raise Conflict(f"workspace {name!r} exists already")
                row = WorkspaceRow(
                    name=name, description=description, created_at=utcnow(), created_by=actor
                )
                session.add(row)
                session.flush()
                self._audit.changed(
                    actor, "workspaces.create", f"workspace/{name}", {}, session=session
                )
                return Workspace.model_validate(row)
        except IntegrityError:  # created at the same moment by someone else
            raise Conflict(f"workspace {name!r} exists already") from None

    def get(self, name: str) -> Workspace:
        validate_workspace(name, field="name")
        with self._db.session() as session:
            row = session.get(WorkspaceRow, name)
            if row is None:
                raise NotFound(f"workspace {name!r} not found")
            return Workspace.model_validate(row)

    def set_model_formats(
        self, name: str, formats: list[str] | None, *, actor: str | None = None
    ) -> Workspace:
        """Set the model formats ``name``'s models may be registered and loaded in
        (flavor/serialization patterns, within the platform's
        ``registry.allowed_model_formats``); ``None`` goes back to the platform's alone.
        Audited (``workspaces.model_formats``) in the same transaction."""
        validate_workspace(name, field="name")
        checked = None if formats is None else check_model_formats(formats, field="model_formats")
        with self._db.write() as session:
            row = session.get(WorkspaceRow, name)
            if row is None:
                raise NotFound(f"workspace {name!r} not found")
            previous = row.model_formats
            row.model_formats = checked
            self._audit.changed(
                actor or local_actor(),
                "workspaces.model_formats",
                f"workspace/{name}",
                {"from": previous, "to": checked},
                session=session,
            )
            session.flush()
            return Workspace.model_validate(row)

    def model_formats(self, name: str) -> list[str] | None:
        """The workspace's own model format policy; ``None``: the platform's alone (or
        no such workspace)."""
        return workspace_model_formats(self._db, name)

    def exists(self, name: str) -> bool:
        with self._db.session() as session:
            return session.get(WorkspaceRow, name) is not None

    def list(self, names: Iterable[str] | None = None) -> Listing[Workspace]:
        """Every workspace, by name; only ``names`` when given (a token's grants)."""
        query = select(WorkspaceRow).order_by(WorkspaceRow.name)
        if names is not None and ALL_WORKSPACES not in (wanted := set(names)):
            query = query.where(WorkspaceRow.name.in_(wanted))
        with self._db.session() as session:
            return Listing(Workspace.model_validate(row) for row in session.scalars(query))
