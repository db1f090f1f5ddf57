"""The events capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base
from slipway.core.db.types import BigIntPK


class TriggerRow(Base):
    """Start a pipeline when a matching event arrives, at most once per debounce window."""

    __tablename__ = "slipway_triggers"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(63))
    event_type: Mapped[str] = mapped_column(String(127), index=True)
    filters: Mapped[dict[str, Any]]
    parameter_mapping: Mapped[dict[str, Any]]
    debounce_seconds: Mapped[float]
    enabled: Mapped[bool]
    last_fired_at: Mapped[datetime | None]
    fired: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    # Made through the API: the built-in job steps confine what it gives them.
    confined: Mapped[bool] = mapped_column(default=False)


class AlertChannelRow(Base):
    """Where alerts go: a webhook, e-mail recipients or the log.

    ``config`` holds no secret of the platform's: the SMTP server and its password come
    from the settings, never from a channel.
    """

    __tablename__ = "slipway_alert_channels"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertRuleRow(Base):
    """Which events raise an alert, to which channels, with what cool-down.

    ``after_event`` is the newest event id when the rule was created: older events never
    fire it, so a new rule does not replay history.
    """

    __tablename__ = "slipway_alert_rules"

    # Names are unique per workspace; a rule matches its own workspace's events only.
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    filters: Mapped[dict[str, Any]]
    channels: Mapped[list[str]] = mapped_column(JSON)
    cooldown_seconds: Mapped[float]
    dedup_by: Mapped[list[str]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool]
    after_event: Mapped[int] = mapped_column(BigIntPK, default=0)
    fired: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    last_fired_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertRow(Base):
    """One fired alert: the rule, the event that raised it and its de-duplication key.

    ``suppressed`` counts the later events of the same rule and key absorbed by the
    cool-down; ``suppressed_before`` is what the previous alert of that key absorbed, which
    this alert's notification reports.
    """

    __tablename__ = "slipway_alerts"
    __table_args__ = (
        Index("uq_slipway_alerts_rule_event_id", "workspace", "rule", "event_id", unique=True),
        Index("ix_slipway_alerts_rule_dedup_key_id", "workspace", "rule", "dedup_key", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(63), default="default")
    rule: Mapped[str] = mapped_column(String(63))
    severity: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int] = mapped_column(BigIntPK)
    event_type: Mapped[str] = mapped_column(String(127))
    resource: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]]
    dedup_key: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime]
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_before: Mapped[int] = mapped_column(Integer, default=0)
    last_suppressed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class AlertDeliveryRow(Base):
    """One alert to one channel: pending until delivered, or failed after its attempts.

    ``history`` records every attempt (time, outcome, status code, error); a pending
    delivery is claimed by pushing ``next_attempt_at`` past the attempt's time limit.
    """

    __tablename__ = "slipway_alert_deliveries"
    __table_args__ = (
        Index("ix_slipway_alert_deliveries_due", "state", "next_attempt_at"),
        Index("ix_slipway_alert_deliveries_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigIntPK)
    channel: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
