"""Feature-group definitions and ingestion records in the metadata database; they come
out as the resources of :mod:`slipway.features.resources`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, NotFound
from slipway.core.events import EventLog
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_resource
from slipway.features.definitions import FeatureGroup, check_evolution
from slipway.features.profile import GroupActivity
from slipway.features.resources import Ingest, StoredGroup
from slipway.features.tables import FeatureGroupRow, FeatureIngestRow
from slipway.security.audit import AuditLog
from slipway.security.tables import AuditRow

# How long after an ingestion finishes its audit entry may be written (it follows the
# ingestion's own record, in another transaction).
AUDIT_LAG = timedelta(minutes=5)


@dataclass(frozen=True)
class Claim:
    """An attempt's hold on an ingestion record: ``token`` is the heartbeat it last wrote,
    which only it knows, so a renewal tells whether another attempt has taken over."""

    id: int
    token: datetime
    resumed: bool


def _stored(row: FeatureGroupRow) -> StoredGroup:
    return StoredGroup.model_validate(row)


class GroupRepository:
    """One workspace's definitions and ingestions; definitions change with their event and
    audit entry in one transaction."""

    def __init__(
        self,
        db: Database,
        events: EventLog,
        audit: AuditLog | None = None,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        self._db = db
        self._events = events
        self._audit = audit or AuditLog(db)
        self.workspace = workspace

    @property
    def database(self) -> Database:
        """The metadata database the definitions live in (feature views' too)."""
        return self._db

    def in_workspace(self, workspace: str) -> GroupRepository:
        """The same database's groups of ``workspace``."""
        return GroupRepository(self._db, self._events, self._audit, workspace=workspace)

    def resource(self, name: str) -> str:
        """The group's resource in events and the audit log."""
        return scoped_resource(self.workspace, f"feature-group/{name}")

    def _key(self, name: str) -> tuple[str, str]:
        return (self.workspace, name)

    def create(self, spec: FeatureGroup, *, actor: str | None = None) -> StoredGroup:
        now = utcnow()
        with self._db.write() as session:
            if session.get(FeatureGroupRow, self._key(spec.name)) is not None:
                raise Conflict(f"feature group {spec.name!r} exists already")
            row = FeatureGroupRow(
                workspace=self.workspace,
                name=spec.name,
                spec=spec.model_dump(mode="json"),
                revision=1,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            self._events.append(
                "feature_group.created",
                self.resource(spec.name),
                {"revision": 1},
                session=session,
            )
            self._audit.changed(
                actor,
                "feature_group.create",
                self.resource(spec.name),
                {"revision": 1},
                session=session,
            )
            session.flush()
            return _stored(row)

    def update(
        self, spec: FeatureGroup, *, actor: str | None = None
    ) -> tuple[StoredGroup, list[str]]:
        """Apply a compatible change; returns the stored group and the added features."""
        with self._db.write() as session:
            row = session.get(FeatureGroupRow, self._key(spec.name), with_for_update=True)
            if row is None:
                raise NotFound(f"feature group {spec.name!r} does not exist")
            added = check_evolution(FeatureGroup.model_validate(row.spec), spec)
            row.spec = spec.model_dump(mode="json")
            row.revision += 1
            row.updated_at = utcnow()
            self._events.append(
                "feature_group.updated",
                self.resource(spec.name),
                {"revision": row.revision, "added": [f.name for f in added]},
                session=session,
            )
            self._audit.changed(
                actor,
                "feature_group.update",
                self.resource(spec.name),
                {"revision": row.revision, "added": [f.name for f in added]},
                session=session,
            )
            session.flush()
            return _stored(row), [f.name for f in added]

    def get(self, name: str) -> StoredGroup:
        with self._db.session() as session:
            row = session.get(FeatureGroupRow, self._key(name))
            if row is None:
                raise NotFound(f"feature group {name!r} does not exist")
            return _stored(row)

    def all(self) -> list[StoredGroup]:
        with self._db.session() as session:
            rows = session.scalars(
                select(FeatureGroupRow)
                .where(FeatureGroupRow.workspace == self.workspace)
                .order_by(FeatureGroupRow.name)
            )
            return [_stored(row) for row in rows]

    def delete(self, name: str, *, actor: str | None = None) -> None:
        with self._db.write() as session:
            row = session.get(FeatureGroupRow, self._key(name))
            if row is None:
                raise NotFound(f"feature group {name!r} does not exist")
            revision = row.revision
            session.delete(row)
            self._events.append("feature_group.deleted", self.resource(name), {}, session=session)
            self._audit.changed(
                actor,
                "feature_group.delete",
                self.resource(name),
                {"revision": revision},
                session=session,
            )

    def start_ingest(self, group: str, kind: str, source: str) -> int:
        with self._db.write() as session:
            row = _running_ingest(self.workspace, group, kind, source, utcnow())
            session.add(row)
            session.flush()
            return row.id

    def claim_ingest(
        self, group: str, kind: str, source: str, key: str, *, stale_after: float
    ) -> Claim | Ingest:
        """Start, resume or replay the ingestion a client names by ``key``.

        Returns the recorded :class:`Ingest` when one with this key succeeded (a retry
        after a lost answer must not write twice), else a :class:`Claim` on a new record
        or on one whose attempt failed or died (no heartbeat for ``stale_after`` seconds).
        Raises :class:`Conflict` while another attempt is alive: two writers of one batch
        could both find it unwritten."""
        for _ in range(2):
            now = utcnow()
            try:
                with self._db.write() as session:
                    row = session.scalars(
                        select(FeatureIngestRow)
                        .where(
                            FeatureIngestRow.workspace == self.workspace,
                            FeatureIngestRow.group_name == group,
                            FeatureIngestRow.idempotency_key == key,
                        )
                        .with_for_update()
                    ).first()
                    if row is None:
                        row = _running_ingest(self.workspace, group, kind, source, now, key=key)
                        session.add(row)
                        session.flush()
                        return Claim(row.id, now, resumed=False)
                    if row.state == "succeeded":
                        return Ingest.model_validate(row)
                    beat = row.heartbeat_at
                    if (
                        row.state == "running"
                        and beat is not None
                        and now - beat < timedelta(seconds=stale_after)
                    ):
                        raise Conflict(
                            f"ingestion {key!r} into feature group {group!r} is in progress"
                            " in another attempt; retry later",
                            details={"ingest_id": row.id, "idempotency_key": key},
                        )
                    row.state = "running"
                    row.heartbeat_at = now
                    row.error = None
                    row.finished_at = None
                    session.flush()
                    return Claim(row.id, now, resumed=True)
            except IntegrityError:
                continue  # another attempt inserted the key first: read its record
        raise Conflict(f"ingestion {key!r} into feature group {group!r} is contended")

    def renew_ingest(self, claim: Claim) -> Claim:
        """Beat the attempt's heartbeat; :class:`Conflict` when another attempt took over
        (this one was presumed dead), so it stops before writing anything more."""
        now = utcnow()
        with self._db.write() as session:
            row = session.get(FeatureIngestRow, claim.id, with_for_update=True)
            if row is None or row.state != "running" or row.heartbeat_at != claim.token:
                raise Conflict(
                    f"ingestion {claim.id} was taken over by another attempt",
                    details={"ingest_id": claim.id},
                )
            row.heartbeat_at = now
        return Claim(claim.id, now, claim.resumed)

    def finish_ingest(
        self,
        ingest_id: int,
        *,
        state: str,
        rows: int = 0,
        offline_version: int | None = None,
        online_applied: int | None = None,
        stats: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Ingest:
        with self._db.write() as session:
            row = session.get(FeatureIngestRow, ingest_id)
            assert row is not None
            row.state = state
            row.rows = rows
            row.offline_version = offline_version
            row.online_applied = online_applied
            row.stats = stats or {}
            row.error = error
            row.finished_at = utcnow()
            if state == "succeeded":
                self._events.append(
                    "feature_group.ingested",
                    scoped_resource(row.workspace, f"feature-group/{row.group_name}"),
                    {
                        "ingest_id": ingest_id,
                        "rows": rows,
                        "kind": row.kind,
                        "offline_version": offline_version,
                    },
                    session=session,
                )
            session.flush()
            return Ingest.model_validate(row)

    def ingests(self, group: str, *, limit: int = 50, offset: int = 0) -> list[Ingest]:
        """The group's ingestions, newest first, from the ``offset``-th."""
        with self._db.session() as session:
            rows = session.scalars(
                select(FeatureIngestRow)
                .where(
                    FeatureIngestRow.workspace == self.workspace,
                    FeatureIngestRow.group_name == group,
                )
                .order_by(FeatureIngestRow.id.desc())
                .offset(offset)
                .limit(limit)
            )
            return [Ingest.model_validate(row) for row in rows]

    def ingest(self, group: str, ingest_id: int) -> Ingest:
        """One of the group's ingestions; NotFound naming it when the group has no such."""
        with self._db.session() as session:
            row = session.get(FeatureIngestRow, ingest_id)
            if row is None or row.workspace != self.workspace or row.group_name != group:
                raise NotFound(f"feature group {group!r} has no ingestion {ingest_id}")
            return Ingest.model_validate(row)

    def count_ingests(self, group: str) -> int:
        """How many ingestions the group has had, in any state (to page through them)."""
        with self._db.session() as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        FeatureIngestRow.workspace == self.workspace,
                        FeatureIngestRow.group_name == group,
                    )
                )
                or 0
            )

    def latest_succeeded(self, group: str) -> Ingest | None:
        """The group's newest succeeded ingestion that wrote rows, if any."""
        with self._db.session() as session:
            row = session.scalars(
                select(FeatureIngestRow)
                .where(
                    FeatureIngestRow.workspace == self.workspace,
                    FeatureIngestRow.group_name == group,
                    FeatureIngestRow.state == "succeeded",
                    FeatureIngestRow.rows > 0,
                )
                .order_by(FeatureIngestRow.id.desc())
                .limit(1)
            ).first()
            return None if row is None else Ingest.model_validate(row)

    def activity(self, groups: Sequence[str]) -> dict[str, GroupActivity]:
        """Each group's succeeded ingestions in one query: count, rows, the last one's end
        and the newest event time any carried (the largest ``max_event_time`` of their
        stored statistics: ISO 8601 texts in UTC, which order as the times do)."""
        activity = {name: GroupActivity(name) for name in groups}
        if not groups:
            return activity
        newest = FeatureIngestRow.stats["max_event_time"].as_string()
        query = (
            select(
                FeatureIngestRow.group_name,
                func.count(),
                func.sum(FeatureIngestRow.rows),
                func.max(FeatureIngestRow.finished_at),
                func.max(newest),
            )
            .where(
                FeatureIngestRow.workspace == self.workspace,
                FeatureIngestRow.group_name.in_(list(groups)),
                FeatureIngestRow.state == "succeeded",
            )
            .group_by(FeatureIngestRow.group_name)
        )
        with self._db.session() as session:
            for name, count, rows, finished, event_time in session.execute(query):
                activity[name] = GroupActivity(
                    name,
                    ingests=int(count),
                    rows_ingested=int(rows or 0),
                    last_ingest_at=_aware(finished),
                    newest_event_time=_aware(
                        datetime.fromisoformat(event_time) if event_time else None
                    ),
                )
        return activity

    def ingest_actors(self, group: str, ingests: Sequence[Ingest]) -> dict[int, str]:
        """Who ran each of ``ingests``, from the audit entries written as each finished
        (found through the audit log's time index, then matched by ingestion id).
        Streamed micro-batches are not audited one by one, so they have no entry."""
        done = [i for i in ingests if i.finished_at is not None and i.state == "succeeded"]
        if not done:
            return {}
        wanted = {i.id for i in done}
        start = min(_aware(i.finished_at) or utcnow() for i in done)
        end = max(_aware(i.finished_at) or utcnow() for i in done) + AUDIT_LAG
        query = select(AuditRow.actor, AuditRow.details).where(
            AuditRow.time >= start,
            AuditRow.time <= end,
            AuditRow.action == "feature_group.ingest",
            AuditRow.resource == self.resource(group),
        )
        actors: dict[int, str] = {}
        with self._db.session() as session:
            for actor, details in session.execute(query):
                ingest_id = (details or {}).get("ingest")
                if isinstance(ingest_id, int) and ingest_id in wanted:
                    actors[ingest_id] = actor
        return actors


def _aware(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite may hand back naive ones)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _running_ingest(
    workspace: str, group: str, kind: str, source: str, now: datetime, *, key: str | None = None
) -> FeatureIngestRow:
    """A new ingestion record in state ``running``; a keyed one starts its heartbeat."""
    return FeatureIngestRow(
        workspace=workspace,
        group_name=group,
        kind=kind,
        source=source[:1024],
        state="running",
        rows=0,
        stats={},
        started_at=now,
        idempotency_key=key,
        heartbeat_at=now if key is not None else None,
    )


# Ingest and StoredGroup are defined in slipway.features.resources and still importable
# from here, where they lived first.
__all__ = ["Claim", "GroupRepository", "Ingest", "StoredGroup"]
