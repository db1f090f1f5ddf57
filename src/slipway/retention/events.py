"""Retention of the events outbox: an event goes only when every durable subscriber has
acknowledged it, and it is older than the cutoff.

The durable subscribers are every named cursor in the database plus the platform's own
(alerts and pipeline triggers, which the scheduler always runs, and the Kafka publisher
when Kafka is configured). One of those that has never acknowledged anything has no
cursor row yet; it counts as position 0, so nothing is deleted until it has read the log
— otherwise it would start, later, past events it never saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, select

from slipway.core.db.engine import Database
from slipway.core.db.tables import EventCursorRow, EventRow
from slipway.events.alerts import SUBSCRIBER as ALERTS
from slipway.events.kafka import SUBSCRIBER as KAFKA_PUBLISHER
from slipway.events.triggers import SUBSCRIBER as TRIGGERS
from slipway.retention.report import KindReport


def platform_subscribers(*, kafka: bool) -> list[str]:
    """The subscribers the platform itself runs (the scheduler's loop)."""
    return [ALERTS, TRIGGERS, *([KAFKA_PUBLISHER] if kafka else [])]


def purge_events(
    db: Database,
    cutoff: datetime,
    *,
    subscribers: Iterable[str],
    dry_run: bool,
    batch_size: int,
) -> KindReport:
    """Delete events older than ``cutoff`` with an id at or below every subscriber's
    acknowledged position, ``batch_size`` per transaction."""
    report = KindReport("events")
    with db.session() as session:
        positions = {
            row.subscriber: row.position for row in session.scalars(select(EventCursorRow))
        }
    for name in subscribers:
        positions.setdefault(name, 0)
    if not positions:  # nobody subscribes: every event is as read as it will ever be
        positions["(none)"] = 2**62
    slowest = min(positions, key=lambda name: positions[name])
    floor = positions[slowest]
    old = EventRow.time < cutoff
    deletable = (EventRow.id <= floor) & old
    with db.session() as session:
        total_old = session.scalar(select(func.count()).where(old)) or 0
        if dry_run:
            report.deleted = session.scalar(select(func.count()).where(deletable)) or 0
    if not dry_run:
        while True:
            with db.write() as session:
                query = select(EventRow.id).where(deletable).order_by(EventRow.id)
                ids = list(session.scalars(query.limit(batch_size)))
                if ids:
                    session.execute(delete(EventRow).where(EventRow.id.in_(ids)))
            report.deleted += len(ids)
            if len(ids) < batch_size:
                break
    report.protected = max(0, total_old - report.deleted)
    if report.protected:
        report.notes.append(
            f"{report.protected} old events kept: subscriber {slowest!r} has acknowledged"
            f" only up to event {floor}"
        )
    return report
