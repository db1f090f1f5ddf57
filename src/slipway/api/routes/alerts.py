"""Alerts over REST: channels, rules, the fired-alert history, and test notifications.

Channels say where alerts go (``webhook``, ``email``, ``log``); webhook URLs are checked
against SSRF when saved, and shown with their path hidden (it is often the secret).
Rules say which events alert which channels, with cool-down and de-duplication. The
scheduler turns events into alerts and delivers them; ``GET /alerts/fired`` shows each
alert with every delivery and its attempts.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from slipway.api.auth import Principal, authorize, services_of, workspace_of
from slipway.api.routes import Int64
from slipway.core.resource import Listing
from slipway.events.alerts import Alerts
from slipway.events.resources import (
    Alert,
    AlertChannel,
    AlertRule,
    ChannelCreate,
    ChannelTest,
    ChannelUpdate,
    RuleUpdate,
)
from slipway.events.rules import RuleSpec

_caller = authorize(scoped=True)
router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


def alerts(request: Request) -> Alerts:
    """The alert channels, rules and alerts of the request's workspace."""
    return services_of(request).alerts.in_workspace(workspace_of(request))


# -- channels ---------------------------------------------------------------------------


@router.get("/channels", response_model=list[AlertChannel])
def list_channels(request: Request) -> Listing[AlertChannel]:
    return alerts(request).channels()


@router.post("/channels", status_code=201, response_model=AlertChannel)
def create_channel(body: ChannelCreate, request: Request, caller: Caller) -> AlertChannel:
    """Save a channel. A webhook URL on a loopback, link-local or metadata address is a 400
    naming ``config.url`` unless the operator allowed its host."""
    return alerts(request).create_channel(body.name, body.kind, body.config, actor=caller.name)


@router.get("/channels/{name}", response_model=AlertChannel)
def describe_channel(name: str, request: Request) -> AlertChannel:
    return alerts(request).channel(name)


@router.put("/channels/{name}", response_model=AlertChannel)
def update_channel(
    name: str, body: ChannelUpdate, request: Request, caller: Caller
) -> AlertChannel:
    """Replace the channel's config (its kind stays), checked like a new one."""
    return alerts(request).update_channel(name, body.config, actor=caller.name)


@router.delete("/channels/{name}", status_code=204)
def delete_channel(name: str, request: Request, caller: Caller) -> None:
    """Delete a channel; a 409 while a rule still sends to it."""
    alerts(request).delete_channel(name, actor=caller.name)


@router.post("/channels/{name}/test", response_model=ChannelTest)
def test_channel(name: str, request: Request, caller: Caller) -> ChannelTest:
    """Send a test notification now; the answer says whether it was delivered."""
    return alerts(request).test(name, actor=caller.name)


# -- rules ------------------------------------------------------------------------------


@router.get("/rules", response_model=list[AlertRule])
def list_rules(request: Request) -> Listing[AlertRule]:
    return alerts(request).rules()


@router.post("/rules", status_code=201, response_model=AlertRule)
def create_rule(body: RuleSpec, request: Request, caller: Caller) -> AlertRule:
    """Save a rule; it applies to events appended from now on."""
    return alerts(request).create_rule(body, actor=caller.name)


@router.get("/rules/{name}", response_model=AlertRule)
def describe_rule(name: str, request: Request) -> AlertRule:
    return alerts(request).rule(name)


@router.put("/rules/{name}", response_model=AlertRule)
def update_rule(name: str, body: RuleUpdate, request: Request, caller: Caller) -> AlertRule:
    """Replace the rule's definition (a rule body; ``name`` may be left out)."""
    return alerts(request).update_rule(name, body, actor=caller.name)


@router.post("/rules/{name}/enable", response_model=AlertRule)
def enable_rule(name: str, request: Request, caller: Caller) -> AlertRule:
    return alerts(request).set_rule_enabled(name, True, actor=caller.name)


@router.post("/rules/{name}/disable", response_model=AlertRule)
def disable_rule(name: str, request: Request, caller: Caller) -> AlertRule:
    return alerts(request).set_rule_enabled(name, False, actor=caller.name)


@router.delete("/rules/{name}", status_code=204)
def delete_rule(name: str, request: Request, caller: Caller) -> None:
    """Delete a rule; the alerts it fired stay in the history."""
    alerts(request).delete_rule(name, actor=caller.name)


# -- fired alerts -----------------------------------------------------------------------


@router.get("/fired", response_model=list[Alert])
def list_fired(
    request: Request,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Listing[Alert]:
    """Fired alerts, newest first, each with its deliveries."""
    return alerts(request).fired(rule=rule, limit=limit)


@router.get("/fired/{alert_id}", response_model=Alert)
def describe_fired(alert_id: Int64, request: Request) -> Alert:
    return alerts(request).alert(alert_id)
