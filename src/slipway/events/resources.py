"""The events capability's resources: pipeline triggers (what
:class:`~slipway.events.triggers.Triggers` returns), and the alerts' channels, rules, fired
alerts with their deliveries and the outcome of a test notification (what
:class:`~slipway.events.alerts.Alerts` returns) — what the REST API sends, what the remote
client decodes and what the CLI prints.

Also the request bodies the REST API takes (``extra="forbid"``: a misspelt field is an
error naming it). A rule's own body is :class:`~slipway.events.rules.RuleSpec`.

A channel's ``config`` is shown with a webhook URL's path hidden (it is often the secret)
on every face, the embedded one included; the stored config keeps it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slipway.core.names import validate_name
from slipway.core.resource import Resource
from slipway.events.channels import ChannelKind
from slipway.events.rules import RuleSpec

# -- triggers ---------------------------------------------------------------------------


class TriggerSpec(BaseModel):
    """The body that creates a trigger (``POST /triggers``): start ``pipeline`` when an
    event of ``event_type`` whose fields match ``filters`` is appended, with parameters
    taken from the event by ``parameter_mapping`` (parameter -> path, e.g.
    ``payload.rows``), at most once per ``debounce_seconds``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    pipeline: str
    event_type: str = Field(min_length=1, max_length=127)
    filters: dict[str, Any] = Field(default_factory=dict)
    parameter_mapping: dict[str, str] = Field(default_factory=dict)
    debounce_seconds: float = Field(default=0.0, ge=0)


class Trigger(Resource):
    """A pipeline trigger: what it listens for, what it starts, how often it fired."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "event_type",
        "pipeline",
        "filters",
        "debounce_seconds",
        "enabled",
        "fired",
        "last_fired_at",
    )

    name: str
    pipeline: str
    event_type: str
    filters: dict[str, Any]
    parameter_mapping: dict[str, str]
    debounce_seconds: float
    enabled: bool
    fired: int
    last_fired_at: datetime | None = None
    created_at: datetime


# -- channels ---------------------------------------------------------------------------


class AlertChannel(Resource):
    """Where alerts go: a webhook, e-mail recipients or the log."""

    table_fields: ClassVar[tuple[str, ...]] = ("name", "kind", "config", "created_by", "updated_at")

    name: str
    kind: str = Field(description="webhook, email or log")
    config: dict[str, Any] = Field(description="webhook URLs without their path")
    created_by: str
    created_at: datetime
    updated_at: datetime


class ChannelCreate(BaseModel):
    """The body that saves a channel (``POST /alerts/channels``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    kind: ChannelKind
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="webhook: {url, format: json|slack}; email: {to: [...]}; log: {}",
    )


class ChannelUpdate(BaseModel):
    """A channel's new config (``PUT /alerts/channels/{name}``); its kind stays."""

    model_config = ConfigDict(extra="forbid", strict=True)

    config: dict[str, Any] = Field(default_factory=dict)


class ChannelTest(Resource):
    """The outcome of one test notification (nothing is recorded)."""

    channel: str
    delivered: bool
    status_code: int | None = None
    error: str | None = None


# -- rules ------------------------------------------------------------------------------


class AlertRule(Resource):
    """Which events raise an alert, to which channels, with what cool-down."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "event_types",
        "channels",
        "severity",
        "cooldown_seconds",
        "enabled",
        "fired",
        "suppressed",
        "last_fired_at",
    )

    name: str
    event_types: list[str]
    channels: list[str]
    filters: dict[str, Any]
    cooldown_seconds: float
    dedup_by: list[str]
    severity: str
    description: str
    enabled: bool
    fired: int
    suppressed: int = Field(description="events absorbed by the cool-down")
    last_fired_at: datetime | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime


class RuleUpdate(RuleSpec):
    """A rule's new definition (``PUT /alerts/rules/{name}``): a rule body whose ``name``
    may be left out (a rule cannot be renamed)."""

    name: str | None = None  # type: ignore[assignment]

    # Same name as RuleSpec's validator, so it replaces it (a left-out name is not an error).
    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:  # type: ignore[override]
        return None if value is None else validate_name(value, field="name")


# -- fired alerts -----------------------------------------------------------------------


class AlertDelivery(Resource):
    """One alert to one channel: pending until delivered, or failed after its attempts."""

    table_fields: ClassVar[tuple[str, ...]] = ("id", "channel", "state", "attempts", "status_code")

    id: int
    alert_id: int
    channel: str
    state: str = Field(description="pending, delivered or failed")
    attempts: int
    status_code: int | None = None
    last_error: str | None = None
    history: list[dict[str, Any]] = Field(description="every attempt: time, outcome, error")
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Alert(Resource):
    """One fired alert: the rule, the event that raised it, and its deliveries."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "time",
        "rule",
        "severity",
        "event_type",
        "resource",
        "suppressed",
    )

    id: int
    rule: str
    severity: str
    event_id: int
    event_type: str
    resource: str
    payload: dict[str, Any]
    dedup_key: str
    time: datetime
    suppressed: int = Field(description="later events of this key absorbed by the cool-down")
    suppressed_before: int = Field(description="what the previous alert of the key absorbed")
    deliveries: list[AlertDelivery] = Field(default_factory=list)


__all__ = [
    "Alert",
    "AlertChannel",
    "AlertDelivery",
    "AlertRule",
    "ChannelCreate",
    "ChannelTest",
    "ChannelUpdate",
    "RuleUpdate",
    "Trigger",
    "TriggerSpec",
]
