"""Which spec set owns which resource: the record ``slipway apply`` keeps of its work.

Terraform keeps a state file; Slipway keeps this table in the metadata database beside
the resources, so every machine that plans against a platform sees the same ownership
and no state file can go stale or be lost. A row says "spec set S applied this resource,
with a spec of this digest": ``--prune`` deletes only resources whose row names the spec
set being applied (never one made by hand, which has no row), and a live resource that no
longer matches the spec of its digest was changed outside apply (drift).
"""

from __future__ import annotations

from sqlalchemy import select

from slipway.apply.resources import AppliedRecord, AppliedResource, check_kind
from slipway.apply.tables import AppliedRow
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import NotFound
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_resource
from slipway.security.audit import AuditLog, local_actor


class Ownership:
    """The ownership records of one workspace (:meth:`in_workspace` gives another's)."""

    def __init__(
        self, db: Database, audit: AuditLog | None = None, workspace: str = DEFAULT_WORKSPACE
    ) -> None:
        self.db = db
        self.audit = audit or AuditLog(db)
        self.workspace = workspace

    def in_workspace(self, workspace: str) -> Ownership:
        """The records of ``workspace`` (a validated name)."""
        return Ownership(self.db, self.audit, workspace)

    def owned(self, spec_set: str | None = None) -> Listing[AppliedResource]:
        """Every record of the workspace, or ``spec_set``'s only, by kind and name."""
        query = select(AppliedRow).where(AppliedRow.workspace == self.workspace)
        if spec_set is not None:
            query = query.where(AppliedRow.spec_set == validate_name(spec_set, field="spec_set"))
        with self.db.session() as session:
            rows = session.scalars(query.order_by(AppliedRow.kind, AppliedRow.name))
            return Listing(
                AppliedResource.model_validate(row, from_attributes=True) for row in rows
            )

    def record(
        self,
        kind: str,
        name: str,
        body: AppliedRecord | dict[str, str],
        *,
        actor: str | None = None,
    ) -> AppliedResource:
        """Say that ``body.spec_set`` applied resource ``kind``/``name`` with the spec of
        ``body.digest`` (taking it over from another spec set, if one owned it: apply
        refuses that unless told, so reaching here is the caller's decision)."""
        check_kind(kind)
        validate_name(name, field="name")
        parsed = parse_spec(AppliedRecord, body)
        now = utcnow()
        who = actor or local_actor()
        with self.db.write() as session:
            row = session.get(AppliedRow, (self.workspace, kind, name))
            if row is None:
                row = AppliedRow(workspace=self.workspace, kind=kind, name=name)
                session.add(row)
            row.spec_set, row.digest = parsed.spec_set, parsed.digest
            row.applied_by, row.applied_at = who, now
            self.audit.changed(
                actor,
                "applied.record",
                self._resource(kind, name),
                {"spec_set": parsed.spec_set, "digest": parsed.digest},
                session=session,
            )
            session.flush()
            return AppliedResource.model_validate(row, from_attributes=True)

    def forget(self, kind: str, name: str, *, actor: str | None = None) -> None:
        """Drop the record of ``kind``/``name`` (its resource was deleted by apply, or is
        handed back to hand management); a 404 when there is none."""
        check_kind(kind)
        validate_name(name, field="name")
        with self.db.write() as session:
            row = session.get(AppliedRow, (self.workspace, kind, name))
            if row is None:
                raise NotFound(f"{kind} {name!r} is not owned by any spec set")
            session.delete(row)
            self.audit.changed(
                actor,
                "applied.forget",
                self._resource(kind, name),
                {"spec_set": row.spec_set},
                session=session,
            )

    def _resource(self, kind: str, name: str) -> str:
        return scoped_resource(self.workspace, f"applied/{kind}/{name}")
