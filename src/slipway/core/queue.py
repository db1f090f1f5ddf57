"""The work queue in the metadata database.

Workers for pipeline steps, training jobs, tuning trials, batch chunks and monitor runs all
claim work from here. Guarantees:

- **Exclusive claims.** An item is held by at most one worker at a time. PostgreSQL claims
  with ``SELECT … FOR UPDATE SKIP LOCKED`` (claimers never wait on each other); SQLite
  claims inside a ``BEGIN IMMEDIATE`` transaction (one writer at a time).
- **Leases.** A claim is valid until ``lease_expires_at``; the holder extends it with
  :meth:`WorkQueue.heartbeat`. A worker that dies stops heartbeating, and the item becomes
  claimable again when the lease runs out — the next claim counts as a new attempt.
- **Fencing.** heartbeat / complete / fail name the worker; a worker whose lease was lost
  (expired and reclaimed, or cancelled) gets :class:`LeaseLost` and must stop.
- **Retries with backoff.** A failed attempt goes back to the queue after
  ``backoff_seconds * 2 ** (attempt - 1)`` (capped at an hour) until ``max_attempts``.
- **Order.** Higher ``priority`` first, then earliest ``available_at``, then FIFO.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.db.tables import WorkItemRow
from slipway.core.errors import Conflict, InvalidInput, LeaseLost, NotFound
from slipway.core.names import validate_name

MAX_BACKOFF_SECONDS = 3600.0


class WorkState(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({WorkState.SUCCEEDED, WorkState.FAILED, WorkState.CANCELLED})


@dataclass(frozen=True)
class WorkItem:
    """A snapshot of a work item; re-read it with :meth:`WorkQueue.get` to see changes."""

    id: int
    queue: str
    kind: str
    payload: dict[str, Any]
    priority: int
    state: WorkState
    attempts: int
    max_attempts: int
    available_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    result: dict[str, Any] | None
    last_error: str | None
    dedupe_key: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: WorkItemRow) -> WorkItem:
        return cls(
            id=row.id,
            queue=row.queue,
            kind=row.kind,
            payload=row.payload,
            priority=row.priority,
            state=WorkState(row.state),
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            available_at=row.available_at,
            lease_owner=row.lease_owner,
            lease_expires_at=row.lease_expires_at,
            result=row.result,
            last_error=row.last_error,
            dedupe_key=row.dedupe_key,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WorkQueue:
    """Enqueue, claim, heartbeat, complete, fail and cancel work items."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(
        self,
        queue: str,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        max_attempts: int = 3,
        backoff_seconds: float = 1.0,
        delay_seconds: float = 0.0,
        dedupe_key: str | None = None,
        session: Session | None = None,
    ) -> WorkItem:
        """Add an item. With ``dedupe_key``, enqueueing the same key again returns the
        existing item instead of adding a second one (idempotent producers). Pass
        ``session`` to enqueue atomically with the caller's own change."""
        validate_name(queue, field="queue")
        if not kind or len(kind) > 127:
            raise InvalidInput("kind must be 1-127 characters", field="kind")
        if max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1", field="max_attempts")
        if backoff_seconds < 0 or delay_seconds < 0:
            raise InvalidInput("backoff and delay must not be negative", field="backoff_seconds")
        try:
            json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"payload is not plain JSON: {exc}", field="payload") from None
        now = utcnow()
        row = WorkItemRow(
            queue=queue,
            kind=kind,
            payload=payload,
            priority=priority,
            state=WorkState.QUEUED,
            attempts=0,
            max_attempts=max_attempts,
            backoff_seconds=backoff_seconds,
            available_at=now + timedelta(seconds=delay_seconds),
            dedupe_key=dedupe_key,
            created_at=now,
            updated_at=now,
        )
        if session is not None:
            session.add(row)
            session.flush()
            return WorkItem.from_row(row)
        try:
            with self._db.session() as own:
                own.add(row)
                own.flush()
                return WorkItem.from_row(row)
        except IntegrityError:
            if dedupe_key is None:
                raise
            with self._db.session() as own:
                existing = own.scalars(
                    select(WorkItemRow).where(WorkItemRow.dedupe_key == dedupe_key)
                ).one()
                return WorkItem.from_row(existing)

    def claim(
        self, queues: Sequence[str], worker_id: str, *, lease_seconds: float = 30.0
    ) -> WorkItem | None:
        """Take the next available item from ``queues`` for ``worker_id``, or ``None``.

        Items whose lease expired are claimable again; one that has used up its attempts
        is marked failed instead of being handed out.
        """
        if lease_seconds <= 0:
            raise InvalidInput("lease_seconds must be positive", field="lease_seconds")
        with self._db.write() as session:
            while True:
                now = utcnow()
                row = session.scalars(
                    select(WorkItemRow)
                    .where(
                        WorkItemRow.queue.in_(list(queues)),
                        or_(
                            and_(
                                WorkItemRow.state == WorkState.QUEUED,
                                WorkItemRow.available_at <= now,
                            ),
                            and_(
                                WorkItemRow.state == WorkState.CLAIMED,
                                WorkItemRow.lease_expires_at < now,
                            ),
                        ),
                    )
                    .order_by(
                        WorkItemRow.priority.desc(),
                        WorkItemRow.available_at,
                        WorkItemRow.id,
                    )
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    return None
                if row.state == WorkState.CLAIMED and row.attempts >= row.max_attempts:
                    row.state = WorkState.FAILED
                    row.last_error = (
                        f"lease of {row.lease_owner} expired on attempt {row.attempts} of"
                        f" {row.max_attempts}"
                    )
                    row.lease_owner = None
                    row.lease_expires_at = None
                    row.updated_at = now
                    session.flush()
                    continue
                row.state = WorkState.CLAIMED
                row.attempts += 1
                row.lease_owner = worker_id
                row.lease_expires_at = now + timedelta(seconds=lease_seconds)
                row.updated_at = now
                session.flush()
                return WorkItem.from_row(row)

    def heartbeat(self, item_id: int, worker_id: str, *, lease_seconds: float = 30.0) -> WorkItem:
        """Extend the lease; :class:`LeaseLost` when ``worker_id`` no longer holds it."""
        with self._db.write() as session:
            row = self._held(session, item_id, worker_id)
            now = utcnow()
            row.lease_expires_at = now + timedelta(seconds=lease_seconds)
            row.updated_at = now
            return WorkItem.from_row(row)

    def complete(
        self, item_id: int, worker_id: str, result: dict[str, Any] | None = None
    ) -> WorkItem:
        """Mark the held item succeeded with an optional JSON ``result``."""
        with self._db.write() as session:
            row = self._held(session, item_id, worker_id)
            row.state = WorkState.SUCCEEDED
            row.result = result
            row.lease_owner = None
            row.lease_expires_at = None
            row.updated_at = utcnow()
            return WorkItem.from_row(row)

    def fail(self, item_id: int, worker_id: str, error: str, *, retry: bool = True) -> WorkItem:
        """Record a failed attempt: requeue with backoff while attempts remain (and
        ``retry``), otherwise mark the item failed for good."""
        with self._db.write() as session:
            row = self._held(session, item_id, worker_id)
            now = utcnow()
            row.last_error = error
            row.lease_owner = None
            row.lease_expires_at = None
            row.updated_at = now
            if retry and row.attempts < row.max_attempts:
                delay = min(row.backoff_seconds * 2 ** (row.attempts - 1), MAX_BACKOFF_SECONDS)
                row.state = WorkState.QUEUED
                row.available_at = now + timedelta(seconds=delay)
            else:
                row.state = WorkState.FAILED
            return WorkItem.from_row(row)

    def release(self, item_id: int, worker_id: str) -> WorkItem:
        """Give a held item back, claimable at once by any worker: a stopping worker's
        hand-over. The attempt it was on is not counted (the work was interrupted, it did
        not fail); :class:`LeaseLost` when ``worker_id`` no longer holds it."""
        with self._db.write() as session:
            row = self._held(session, item_id, worker_id)
            now = utcnow()
            row.state = WorkState.QUEUED
            row.attempts = max(0, row.attempts - 1)
            row.available_at = now
            row.last_error = f"released by {worker_id} when it stopped"
            row.lease_owner = None
            row.lease_expires_at = None
            row.updated_at = now
            return WorkItem.from_row(row)

    def cancel(self, item_id: int) -> WorkItem:
        """Cancel a queued or claimed item; its holder's next heartbeat raises LeaseLost."""
        with self._db.write() as session:
            row = session.get(WorkItemRow, item_id)
            if row is None:
                raise NotFound(f"work item {item_id} does not exist")
            if row.state in FINAL_STATES:
                raise Conflict(f"work item {item_id} is already {row.state}")
            row.state = WorkState.CANCELLED
            row.lease_owner = None
            row.lease_expires_at = None
            row.updated_at = utcnow()
            return WorkItem.from_row(row)

    def get(self, item_id: int) -> WorkItem:
        with self._db.session() as session:
            row = session.get(WorkItemRow, item_id)
            if row is None:
                raise NotFound(f"work item {item_id} does not exist")
            return WorkItem.from_row(row)

    def list(
        self, *, queue: str | None = None, state: WorkState | None = None, limit: int = 100
    ) -> list[WorkItem]:
        """Items newest first, optionally filtered by queue and state."""
        query = select(WorkItemRow).order_by(WorkItemRow.id.desc()).limit(limit)
        if queue is not None:
            query = query.where(WorkItemRow.queue == queue)
        if state is not None:
            query = query.where(WorkItemRow.state == state)
        with self._db.session() as session:
            return [WorkItem.from_row(row) for row in session.scalars(query)]

    @staticmethod
    def _held(session: Session, item_id: int, worker_id: str) -> WorkItemRow:
        row = session.get(WorkItemRow, item_id, with_for_update=True)
        if row is None:
            raise NotFound(f"work item {item_id} does not exist")
        if row.state != WorkState.CLAIMED or row.lease_owner != worker_id:
            raise LeaseLost(
                f"work item {item_id} is not held by {worker_id} (state {row.state},"
                f" holder {row.lease_owner})"
            )
        return row
