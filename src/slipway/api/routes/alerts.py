"""Alerts over REST: channels, rules, the fired-alert history, and test notifications.

Channels say where alerts go (``webhook``, ``email``, ``log``); webhook URLs are checked
against SSRF when saved, and shown with their path hidden (it is often the secret).
Rules say which events alert which channels, with cool-down and de-duplication. The
scheduler turns events into alerts and delivers them; ``GET /alerts/fired`` shows each
alert with every delivery and its attempts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from slipway.api.auth import Principal, authorize, services_of
from slipway.api.routes import Int64
from slipway.events.channels import redacted
from slipway.events.rules import RuleSpec
from slipway.events.tables import AlertChannelRow, AlertDeliveryRow, AlertRow, AlertRuleRow

_caller = authorize()
router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


class ChannelIn(BaseModel):
    name: str
    kind: Literal["webhook", "email", "log"]
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="webhook: {url, format: json|slack}; email: {to: [...]}; log: {}",
    )


class ChannelConfigIn(BaseModel):
    config: dict[str, Any] = Field(default_factory=dict)


class ChannelOut(BaseModel):
    name: str
    kind: str
    config: dict[str, Any] = Field(description="webhook URLs without their path")
    created_by: str
    created_at: datetime
    updated_at: datetime


class TestOut(BaseModel):
    channel: str
    delivered: bool
    status_code: int | None
    error: str | None


class RuleOut(BaseModel):
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
    last_fired_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class DeliveryOut(BaseModel):
    id: int
    channel: str
    state: str = Field(description="pending, delivered or failed")
    attempts: int
    status_code: int | None
    last_error: str | None
    history: list[dict[str, Any]] = Field(description="every attempt: time, outcome, error")
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class AlertOut(BaseModel):
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
    deliveries: list[DeliveryOut]


class RuleState(BaseModel):
    name: str
    enabled: bool


def _channel(row: AlertChannelRow) -> ChannelOut:
    out = ChannelOut.model_validate(row, from_attributes=True)
    out.config = redacted(row.kind, row.config)
    return out


def _rule(row: AlertRuleRow) -> RuleOut:
    return RuleOut.model_validate(row, from_attributes=True)


def _alert(row: AlertRow, deliveries: list[AlertDeliveryRow]) -> AlertOut:
    fields = {k: getattr(row, k) for k in AlertOut.model_fields if k != "deliveries"}
    return AlertOut(
        **fields,
        deliveries=[DeliveryOut.model_validate(d, from_attributes=True) for d in deliveries],
    )


# -- channels ---------------------------------------------------------------------------


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(request: Request) -> list[ChannelOut]:
    return [_channel(c) for c in services_of(request).alerts.channels()]


@router.post("/channels", status_code=201, response_model=ChannelOut)
def create_channel(body: ChannelIn, request: Request, caller: Caller) -> ChannelOut:
    """Save a channel. A webhook URL on a loopback, link-local or metadata address is a 400
    naming ``config.url`` unless the operator allowed its host."""
    row = services_of(request).alerts.create_channel(
        body.name, body.kind, body.config, actor=caller.name
    )
    return _channel(row)


@router.get("/channels/{name}", response_model=ChannelOut)
def describe_channel(name: str, request: Request) -> ChannelOut:
    return _channel(services_of(request).alerts.channel(name))


@router.put("/channels/{name}", response_model=ChannelOut)
def update_channel(name: str, body: ChannelConfigIn, request: Request) -> ChannelOut:
    """Replace the channel's config (its kind stays), checked like a new one."""
    return _channel(services_of(request).alerts.update_channel(name, body.config))


@router.delete("/channels/{name}", status_code=204)
def delete_channel(name: str, request: Request) -> None:
    """Delete a channel; a 409 while a rule still sends to it."""
    services_of(request).alerts.delete_channel(name)


@router.post("/channels/{name}/test", response_model=TestOut)
def test_channel(name: str, request: Request, caller: Caller) -> TestOut:
    """Send a test notification now; the answer says whether it was delivered."""
    result = services_of(request).alerts.test(name, actor=caller.name)
    return TestOut(
        channel=name,
        delivered=result.delivered,
        status_code=result.status_code,
        error=result.error,
    )


# -- rules ------------------------------------------------------------------------------


@router.get("/rules", response_model=list[RuleOut])
def list_rules(request: Request) -> list[RuleOut]:
    return [_rule(r) for r in services_of(request).alerts.rules()]


@router.post("/rules", status_code=201, response_model=RuleOut)
def create_rule(body: RuleSpec, request: Request, caller: Caller) -> RuleOut:
    """Save a rule; it applies to events appended from now on."""
    return _rule(services_of(request).alerts.create_rule(body, actor=caller.name))


@router.get("/rules/{name}", response_model=RuleOut)
def describe_rule(name: str, request: Request) -> RuleOut:
    return _rule(services_of(request).alerts.rule(name))


@router.put("/rules/{name}", response_model=RuleOut)
def update_rule(name: str, body: dict[str, Any], request: Request) -> RuleOut:
    """Replace the rule's definition (a rule body; ``name`` may be left out)."""
    return _rule(services_of(request).alerts.update_rule(name, body))


@router.post("/rules/{name}/enable", response_model=RuleState)
def enable_rule(name: str, request: Request) -> RuleState:
    row = services_of(request).alerts.set_rule_enabled(name, True)
    return RuleState(name=row.name, enabled=row.enabled)


@router.post("/rules/{name}/disable", response_model=RuleState)
def disable_rule(name: str, request: Request) -> RuleState:
    row = services_of(request).alerts.set_rule_enabled(name, False)
    return RuleState(name=row.name, enabled=row.enabled)


@router.delete("/rules/{name}", status_code=204)
def delete_rule(name: str, request: Request) -> None:
    """Delete a rule; the alerts it fired stay in the history."""
    services_of(request).alerts.delete_rule(name)


# -- fired alerts -----------------------------------------------------------------------


@router.get("/fired", response_model=list[AlertOut])
def list_fired(
    request: Request,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AlertOut]:
    """Fired alerts, newest first, each with its deliveries."""
    alerts = services_of(request).alerts
    rows = alerts.fired(rule=rule, limit=limit)
    deliveries = alerts.deliveries_of([r.id for r in rows])
    return [_alert(r, deliveries[r.id]) for r in rows]


@router.get("/fired/{alert_id}", response_model=AlertOut)
def describe_fired(alert_id: Int64, request: Request) -> AlertOut:
    alerts = services_of(request).alerts
    row = alerts.alert(alert_id)
    return _alert(row, alerts.deliveries_of([row.id])[row.id])
