"""Delivering fired alerts: claim what is due, send outside any transaction, record it.

Each (alert, channel) pair is one delivery row, pending until a send succeeds. Sending
happens outside database transactions (a slow webhook must not hold the write lock), so
a delivery is first *claimed*: its attempt count goes up and its ``next_attempt_at``
moves past the longest its batch of sends can take. Another scheduler skips it
meanwhile; one that crashed mid-send leaves it due again once the claim runs out.

After each attempt its outcome is appended to the delivery's ``history``. A failure that
may help to retry is tried again after ``backoff_seconds``, doubling each time up to
``max_backoff_seconds``; after ``max_attempts`` — or at once when retrying cannot help —
the delivery is ``failed`` and an ``alert.delivery_failed`` event is appended. That event
is itself alertable, but the failure of an alert raised *by* such an event appends
nothing, so a broken channel cannot feed itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput
from slipway.core.events import EventLog
from slipway.core.settings import AlertSettings
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_resource
from slipway.events.channels import DeliveryError, Notification, Sent, open_channel
from slipway.events.tables import AlertChannelRow, AlertDeliveryRow, AlertRow

FAILED_EVENT = "alert.delivery_failed"
_ERROR_CHARS = 1000


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt: ``state`` is where the delivery stands after it."""

    channel: str
    delivered: bool
    state: str
    attempts: int
    status_code: int | None = None
    error: str | None = None
    delivery_id: int | None = None
    alert_id: int | None = None


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    alert_id: int
    attempts: int
    channel: str
    kind: str | None
    config: dict[str, object]
    notification: Notification
    event_type: str
    workspace: str = DEFAULT_WORKSPACE


def notification_of(alert: AlertRow) -> Notification:
    return Notification(
        rule=alert.rule,
        severity=alert.severity,
        event_type=alert.event_type,
        resource=alert.resource,
        payload=alert.payload,
        time=alert.time,
        dedup_key=alert.dedup_key,
        suppressed=alert.suppressed_before,
        alert_id=alert.id,
        event_id=alert.event_id,
    )


class Deliveries:
    def __init__(self, settings: AlertSettings, db: Database, events: EventLog) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        # The longest one send can take (every redirect hop, or an SMTP conversation),
        # with room to spare: a claim older than this belongs to a crashed sender.
        self.claim_seconds = 60.0 + max(
            settings.timeout_seconds * (settings.max_redirects + 1),
            settings.smtp.timeout_seconds * 6,
        )

    def send(self, kind: str, config: dict[str, object], notification: Notification) -> Sent:
        """Send once, now, without recording anything; :class:`DeliveryError` on failure."""
        try:
            channel = open_channel(kind, dict(config), self.settings)
        except InvalidInput as exc:
            message = f"the channel's config is invalid: {exc.message}"
            raise DeliveryError(message, retryable=False) from None
        return channel.send(notification)

    def deliver(self, *, budget_seconds: float = 5.0, batch: int = 10) -> list[Attempt]:
        """Attempt due deliveries until none is due or ``budget_seconds`` have passed
        (an attempt under way is finished, so a tick can last one send longer)."""
        done: list[Attempt] = []
        deadline = time.monotonic() + budget_seconds
        while time.monotonic() < deadline:
            claimed = self._claim(batch)
            if not claimed:
                break
            for item in claimed:
                done.append(self._attempt(item))
        return done

    def _claim(self, limit: int) -> list[_Claimed]:
        now = utcnow()
        query = (
            select(AlertDeliveryRow)
            .where(AlertDeliveryRow.state == "pending", AlertDeliveryRow.next_attempt_at <= now)
            .order_by(AlertDeliveryRow.next_attempt_at, AlertDeliveryRow.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:  # SQLite's write transaction already excludes others
            query = query.with_for_update(skip_locked=True)
        claimed: list[_Claimed] = []
        with self.db.write() as session:
            rows = list(session.scalars(query))
            # The batch is sent one after the other: the last must still be ours when sent.
            until = now + timedelta(seconds=self.claim_seconds * len(rows))
            for row in rows:
                row.attempts += 1
                row.next_attempt_at = until
                row.updated_at = now
                alert = session.get(AlertRow, row.alert_id)
                # The alert's own workspace's channel: a name is unique within one only.
                channel = (
                    session.get(AlertChannelRow, (alert.workspace, row.channel))
                    if alert is not None
                    else None
                )
                if alert is None:  # deleted underneath: nothing left to say
                    row.state, row.next_attempt_at = "failed", None
                    row.last_error = "the alert no longer exists"
                    continue
                claimed.append(
                    _Claimed(
                        delivery_id=row.id,
                        alert_id=row.alert_id,
                        attempts=row.attempts,
                        channel=row.channel,
                        kind=channel.kind if channel else None,
                        config=dict(channel.config) if channel else {},
                        notification=notification_of(alert),
                        event_type=alert.event_type,
                        workspace=alert.workspace,
                    )
                )
        return claimed

    def _attempt(self, item: _Claimed) -> Attempt:
        outcome: Sent | DeliveryError
        if item.kind is None:
            outcome = DeliveryError(f"channel {item.channel!r} no longer exists", retryable=False)
        else:
            try:
                outcome = self.send(item.kind, item.config, item.notification)
            except DeliveryError as exc:
                outcome = exc
        return self._record(item, outcome)

    def _backoff(self, attempts: int) -> float:
        delay = self.settings.backoff_seconds * 2 ** (attempts - 1)
        return float(min(delay, self.settings.max_backoff_seconds))

    def _record(self, item: _Claimed, outcome: Sent | DeliveryError) -> Attempt:
        now = utcnow()
        failed = isinstance(outcome, DeliveryError)
        error = outcome.message[:_ERROR_CHARS] if isinstance(outcome, DeliveryError) else None
        entry = {
            "attempt": item.attempts,
            "time": now.isoformat(),
            "outcome": "failed" if failed else "delivered",
            "status_code": outcome.status_code,
            "error": error,
        }
        if isinstance(outcome, Sent) and outcome.detail:
            entry["detail"] = outcome.detail
        with self.db.write() as session:
            row = session.get(AlertDeliveryRow, item.delivery_id, with_for_update=True)
            if row is None or row.state != "pending" or row.attempts != item.attempts:
                # Our claim ran out and another sender took over: its record stands.
                state = row.state if row is not None else "failed"
                return Attempt(item.channel, not failed, state, item.attempts, error=error)
            row.history = [*row.history, entry]
            row.status_code = outcome.status_code
            row.updated_at = now
            if isinstance(outcome, Sent):
                row.state, row.delivered_at, row.next_attempt_at = "delivered", now, None
                row.last_error = None
            elif outcome.retryable and row.attempts < self.settings.max_attempts:
                row.last_error = error
                row.next_attempt_at = now + timedelta(seconds=self._backoff(row.attempts))
            else:
                row.state, row.next_attempt_at, row.last_error = "failed", None, error
                if item.event_type != FAILED_EVENT:
                    self.events.append(
                        FAILED_EVENT,
                        scoped_resource(item.workspace, f"alert_channel/{item.channel}"),
                        {
                            "alert_id": item.alert_id,
                            "rule": item.notification.rule,
                            "channel": item.channel,
                            "attempts": row.attempts,
                            "status_code": outcome.status_code,
                            "error": error,
                            "event_id": item.notification.event_id,
                            "event_type": item.event_type,
                            "resource": item.notification.resource,
                        },
                        session=session,
                    )
            return Attempt(
                channel=item.channel,
                delivered=not failed,
                state=row.state,
                attempts=row.attempts,
                status_code=outcome.status_code,
                error=error,
                delivery_id=row.id,
                alert_id=item.alert_id,
            )
