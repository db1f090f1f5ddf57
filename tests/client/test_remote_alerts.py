"""Alert channels, rules and fired alerts through slipway.Client over HTTP, against the
embedded API: the same tests run on both (the ``platform`` fixture).

The webhook receiver is a real HTTP server the test runs on 127.0.0.1 (allowed by the
shared platform's ``alerts.allowed_hosts``); events are appended through the embedded
twin, and ``slipway up``'s scheduler turns them into alerts and delivers them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.events.resources import Alert, AlertChannel, AlertRule, ChannelTest
from tests.events.receivers import WebhookServer, webhook_server
from tests.shared_platform import SharedPlatform
from tests.waiting import eventually


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


def test_an_event_fires_a_rule_and_its_alert_is_delivered(
    platform: Any, shared_platform: SharedPlatform, side: str, hook: WebhookServer
) -> None:
    channel, rule, resource = f"ops-{side}", f"drill-{side}", f"drill/{side}"
    made = platform.alerts.create_channel(
        channel, "webhook", {"url": hook.url("/secret/path")}, actor="test"
    )
    assert isinstance(made, AlertChannel)
    assert made.config["url"] == f"http://127.0.0.1:{hook.port}/***"  # the path is the secret
    created = platform.alerts.create_rule(
        {
            "name": rule,
            "event_types": ["drill.*"],
            "channels": [channel],
            "filters": {"resource": resource},
            "severity": "critical",
        },
        actor="test",
    )
    assert isinstance(created, AlertRule)
    assert (created.fired, created.dedup_by, created.enabled) == (0, ["resource"], True)

    shared_platform.services.events.append("drill.started", resource, {"side": side})

    def delivered() -> Alert | None:
        fired = platform.alerts.fired(rule=rule)
        if fired and fired[0].deliveries and fired[0].deliveries[0].state == "delivered":
            return fired[0]
        return None

    alert = eventually(delivered, what="the alert delivered", timeout=60)
    assert isinstance(alert, Alert)
    assert (alert.rule, alert.severity, alert.resource) == (rule, "critical", resource)
    assert alert.payload == {"side": side} and alert.event_type == "drill.started"
    [delivery] = alert.deliveries
    assert (delivery.channel, delivery.status_code, delivery.attempts) == (channel, 200, 1)
    assert delivery.history[0]["outcome"] == "delivered"
    assert platform.alerts.alert(alert.id) == alert
    assert platform.alerts.deliveries_of([alert.id]) == {alert.id: alert.deliveries}
    assert platform.alerts.rule(rule).fired == 1
    [request] = [r for r in hook.requests if r.json()["alert"]["rule"] == rule]
    assert request.path == "/secret/path"
    assert request.json()["alert"]["resource"] == resource


def test_channels_and_rules_crud(platform: Any, side: str, hook: WebhookServer) -> None:
    channel, spare, rule = f"crud-{side}", f"crud-log-{side}", f"crud-rule-{side}"
    platform.alerts.create_channel(channel, "webhook", {"url": hook.url()}, actor="test")
    platform.alerts.create_channel(spare, "log", None, actor="test")
    listed = platform.alerts.channels()
    assert isinstance(listed, Listing) and {channel, spare} <= {c.name for c in listed}
    moved = platform.alerts.update_channel(channel, {"url": hook.url("/moved"), "format": "slack"})
    assert moved.config["format"] == "slack" and moved.kind == "webhook"
    assert platform.alerts.channel(channel) == moved

    tested = platform.alerts.test(channel, actor="test")
    assert isinstance(tested, ChannelTest)
    assert (tested.channel, tested.delivered, tested.status_code) == (channel, True, 200)
    assert hook.requests[-1].path == "/moved"
    hook.replies = [(500, {})]
    failed = platform.alerts.test(channel)
    assert (failed.delivered, failed.status_code) == (False, 500) and failed.error

    spec = {"name": rule, "event_types": ["crud.happened"], "channels": [channel]}
    platform.alerts.create_rule(spec, actor="test")
    with pytest.raises(Conflict):
        platform.alerts.create_rule(spec, actor="test")
    updated = platform.alerts.update_rule(
        rule, {"event_types": ["crud.*"], "channels": [spare], "cooldown_seconds": 60}
    )
    assert (updated.event_types, updated.channels, updated.cooldown_seconds) == (
        ["crud.*"],
        [spare],
        60.0,
    )
    assert platform.alerts.rule(rule) == updated
    assert rule in [r.name for r in platform.alerts.rules()]
    assert platform.alerts.set_rule_enabled(rule, False).enabled is False
    assert platform.alerts.rule(rule).enabled is False
    assert platform.alerts.set_rule_enabled(rule, True).enabled is True
    with pytest.raises(Conflict) as in_use:
        platform.alerts.delete_channel(spare)
    assert in_use.value.details["rules"] == [rule]

    platform.alerts.delete_rule(rule)
    platform.alerts.delete_channel(spare)
    platform.alerts.delete_channel(channel)
    for gone in (
        lambda: platform.alerts.rule(rule),
        lambda: platform.alerts.channel(channel),
        lambda: platform.alerts.test(spare),
        lambda: platform.alerts.alert(10**12),
    ):
        with pytest.raises(NotFound):
            gone()


def test_bad_input_names_the_field_and_saves_nothing(platform: Any, side: str) -> None:
    name = f"bad-{side}"
    channels: list[tuple[str, dict[str, Any] | None, str]] = [
        ("pager", {}, "kind"),
        ("webhook", {"url": "http://169.254.169.254/latest/meta-data/"}, "config.url"),
        ("webhook", {"url": "ftp://example.org/"}, "config.url"),
        ("email", {}, "config.to"),
    ]
    for kind, config, field in channels:
        with pytest.raises(InvalidInput) as bad:
            platform.alerts.create_channel(name, kind, config, actor="test")
        assert bad.value.field == field, (kind, config, bad.value)
    with pytest.raises(InvalidInput) as bad_name:
        platform.alerts.create_channel("Bad Name", "log", {}, actor="test")
    assert bad_name.value.field == "name"
    assert name not in [c.name for c in platform.alerts.channels()]

    platform.alerts.create_channel(name, "log", {}, actor="test")
    rules: list[tuple[dict[str, Any], str]] = [
        ({"event_types": ["x.y"], "channels": [f"none-{side}"]}, "channels.0"),
        ({"event_types": ["x.y"], "channels": [name], "cooldown_seconds": -1}, "cooldown_seconds"),
        ({"event_types": ["x.y"], "channels": [name], "severity": "panic"}, "severity"),
        ({"event_types": [], "channels": [name]}, "event_types"),
        ({"event_types": ["x.y"], "channels": [name], "colour": "red"}, "colour"),
    ]
    for body, field in rules:
        with pytest.raises(InvalidInput) as bad_rule:
            platform.alerts.create_rule({"name": name} | body, actor="test")
        assert bad_rule.value.field == field, (body, bad_rule.value)
    assert name not in [r.name for r in platform.alerts.rules()]

    platform.alerts.create_rule(
        {"name": name, "event_types": ["x.y"], "channels": [name]}, actor="t"
    )
    with pytest.raises(InvalidInput) as renamed:
        platform.alerts.update_rule(
            name, {"name": f"other-{side}", "event_types": ["x.y"], "channels": [name]}
        )
    assert renamed.value.field == "name"
    with pytest.raises(InvalidInput) as no_channel:
        platform.alerts.update_rule(name, {"event_types": ["x.y"], "channels": ["nowhere"]})
    assert no_channel.value.field == "channels.0"
    assert platform.alerts.rule(name).channels == [name]  # nothing partially written
