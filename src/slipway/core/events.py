"""The events outbox: an append-only, totally ordered log in the metadata database.

Every state change a user may react to (endpoint status, model approval, drift detected)
is appended here, in the same transaction as the change when the caller passes its session
(the transactional-outbox pattern), so an event exists if and only if its change committed.
Subscribers read in ``id`` order from a named cursor they advance after handling.

Ordering: on PostgreSQL, sequence values are handed out before commit, so a reader could
see id 8 committed while id 7 is still in flight and skip 7 for ever. Appends therefore take
a transaction-scoped advisory lock, making allocation and commit happen in id order.
SQLite has a single writer, so its order is already total.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.db.tables import EventCursorRow, EventRow
from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.core.workspace import DEFAULT_WORKSPACE

_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_PG_EVENTS_LOCK = 0x51177A8


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    resource: str
    payload: dict[str, Any]
    time: datetime

    @classmethod
    def from_row(cls, row: EventRow) -> Event:
        return cls(row.id, row.type, row.resource, row.payload, row.time)


class EventLog:
    """Append events and read them in order."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(
        self,
        type: str,
        resource: str,
        payload: dict[str, Any] | None = None,
        *,
        session: Session | None = None,
    ) -> Event:
        """Append one event. ``type`` is dotted (``endpoint.status_changed``); ``resource``
        names what it is about (``endpoint/flight-delay``). Pass ``session`` to commit the
        event atomically with the caller's own change."""
        if not _TYPE.fullmatch(type):
            raise InvalidInput(f"event type {type!r} must be dotted lower-case words", field="type")
        if not resource or len(resource) > 255:
            raise InvalidInput("resource must be 1-255 characters", field="resource")
        body = payload or {}
        try:
            json.dumps(body, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"payload is not plain JSON: {exc}", field="payload") from None
        if session is not None:
            return self._append(session, type, resource, body)
        with self._db.write() as own:
            return self._append(own, type, resource, body)

    def _append(self, session: Session, type: str, resource: str, body: dict[str, Any]) -> Event:
        if not self._db.is_sqlite:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_EVENTS_LOCK})
        row = EventRow(type=type, resource=resource, payload=body, time=utcnow())
        session.add(row)
        session.flush()
        return Event.from_row(row)

    def read(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        types: Sequence[str] | None = None,
        resource: str | None = None,
        workspace: str | None = None,
    ) -> list[Event]:
        """Events with ``id > after`` in id order, optionally filtered; ``workspace``: only
        those of that workspace's resources (``slipway.core.workspace.scoped_resource``)."""
        query = select(EventRow).where(EventRow.id > after).order_by(EventRow.id).limit(limit)
        if types:
            query = query.where(EventRow.type.in_(list(types)))
        if resource is not None:
            query = query.where(EventRow.resource == resource)
        if workspace == DEFAULT_WORKSPACE:
            query = query.where(~EventRow.resource.startswith("workspaces/"))
        elif workspace is not None:
            query = query.where(
                EventRow.resource.startswith(f"workspaces/{workspace}/", autoescape=True)
            )
        with self._db.session() as session:
            return [Event.from_row(row) for row in session.scalars(query)]

    def recent(self, limit: int = 20, *, workspace: str | None = None) -> list[Event]:
        """The newest ``limit`` events, newest first; ``workspace``: only that workspace's
        (as :meth:`read` filters them). One indexed read, whatever the log's length."""
        query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        if workspace == DEFAULT_WORKSPACE:
            query = query.where(~EventRow.resource.startswith("workspaces/"))
        elif workspace is not None:
            query = query.where(
                EventRow.resource.startswith(f"workspaces/{workspace}/", autoescape=True)
            )
        with self._db.session() as session:
            return [Event.from_row(row) for row in session.scalars(query)]

    def last_id(self) -> int:
        """The id of the newest event, 0 when the log is empty."""
        with self._db.session() as session:
            newest = session.scalar(select(EventRow.id).order_by(EventRow.id.desc()).limit(1))
            return newest or 0

    def subscription(self, subscriber: str) -> Subscription:
        """A named, durable cursor over the log (created at position 0)."""
        return Subscription(self, self._db, validate_name(subscriber, field="subscriber"))


class Subscription:
    """A subscriber's durable read position: ``poll`` what is new, ``ack`` what is handled.

    Delivery is at-least-once: a subscriber that crashes between handling and ``ack`` sees
    the same events again, so handlers should be idempotent.
    """

    def __init__(self, log: EventLog, db: Database, name: str) -> None:
        self._log = log
        self._db = db
        self.name = name

    @property
    def position(self) -> int:
        with self._db.session() as session:
            row = session.get(EventCursorRow, self.name)
            return row.position if row else 0

    def poll(self, *, limit: int = 100, types: Sequence[str] | None = None) -> list[Event]:
        """Events after the cursor, oldest first; does not move the cursor."""
        return self._log.read(after=self.position, limit=limit, types=types)

    def ack(self, event_id: int, *, session: Session | None = None) -> None:
        """Move the cursor to ``event_id``; moving it backwards is ignored. Pass
        ``session`` to move it atomically with the handling of the events."""
        if session is None:
            with self._db.write() as own:
                self.ack(event_id, session=own)
            return
        row = session.get(EventCursorRow, self.name, with_for_update=True)
        if row is None:
            session.add(
                EventCursorRow(subscriber=self.name, position=event_id, updated_at=utcnow())
            )
        elif event_id > row.position:
            row.position = event_id
            row.updated_at = utcnow()
