"""Slipway's own tables in the metadata database.

Every table is prefixed ``slipway_`` and the Alembic version table is
``slipway_alembic_version``, so the same database can also hold MLflow's tables.
Core keeps the declarative base and the tables of its own mechanisms (the work queue, the
event log, captured logs of work); each capability declares its tables in
``slipway.<capability>.tables`` on the same base, with a migration here in core.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from slipway.core.db.types import BigIntPK, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base bound to Slipway's metadata and naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class WorkItemRow(Base):
    """One unit of queued work: a step, job, trial, batch chunk or monitor run."""

    __tablename__ = "slipway_work_items"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(127))
    payload: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    backoff_seconds: Mapped[float] = mapped_column(default=1.0)
    available_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_slipway_work_items_claim", "queue", "state", "priority", "available_at"),
    )


class EventRow(Base):
    """One event in the outbox; ``id`` is the total order subscribers read in."""

    __tablename__ = "slipway_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(127), index=True)
    resource: Mapped[str] = mapped_column(String(255), index=True)
    payload: Mapped[dict[str, Any]]
    time: Mapped[datetime]


class EventCursorRow(Base):
    """How far a named subscriber has read the outbox."""

    __tablename__ = "slipway_event_cursors"

    subscriber: Mapped[str] = mapped_column(String(127), primary_key=True)
    position: Mapped[int] = mapped_column(BigIntPK, default=0)
    updated_at: Mapped[datetime]


class StepLogRow(Base):
    """A chunk of a step's captured stdout/stderr, in order."""

    __tablename__ = "slipway_step_logs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # An execution id, or ``job/<name>`` for a training job's log.
    execution_id: Mapped[str] = mapped_column(String(80))
    step: Mapped[str] = mapped_column(String(63))
    attempt: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime]

    __table_args__ = (Index("ix_slipway_step_logs_step", "execution_id", "step", "id"),)
