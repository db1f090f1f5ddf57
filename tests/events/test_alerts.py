"""Alerts end to end on both engines: rules on real events, delivered to a real HTTP server
and a real SMTP server, with cool-down, de-duplication, retries and the SSRF guard."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from slipway.core import events as events_module
from slipway.core.db import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.settings import AlertSettings, load_settings
from slipway.events.alerts import Alerts
from slipway.events.delivery import FAILED_EVENT
from slipway.events.tables import AlertChannelRow, AlertRuleRow
from slipway.services import Services
from slipway.workers.scheduler import run_scheduler
from tests.events.receivers import Mailbox, WebhookServer, smtp_server, webhook_server

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Clock:
    """Event times under the test's control (cool-downs run on event time)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(events_module, "utcnow", clock)
    return clock


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


def _alerts(db: Database, **settings: Any) -> Alerts:
    values: dict[str, Any] = {"allowed_hosts": ["127.0.0.1"], "backoff_seconds": 0.0}
    return Alerts(AlertSettings(**(values | settings)), db, EventLog(db))


def _rule(alerts: Alerts, channels: list[str], **fields: Any) -> None:
    spec = {"name": "drift", "event_types": ["monitor.violations"], "channels": channels}
    alerts.create_rule(spec | fields, actor="test")


def _violations(alerts: Alerts, monitor: str = "x", **payload: Any) -> None:
    alerts.events.append(
        "monitor.violations",
        f"monitor/{monitor}",
        {"monitor": monitor, "endpoint": "flight-delay", "violations": 2, "drifted": ["dep_delay"]}
        | payload,
    )


def test_a_webhook_alert_is_received_in_the_documented_shape(
    db: Database, hook: WebhookServer, clock: Clock
) -> None:
    alerts = _alerts(db)
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="test")
    _rule(alerts, ["ops"], severity="critical")
    _violations(alerts)

    processed = alerts.process()

    assert len(processed.fired) == 1
    assert [(a.channel, a.state, a.status_code) for a in processed.attempts] == [
        ("ops", "delivered", 200)
    ]
    [request] = hook.requests
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    alert = request.json()["alert"]
    assert alert["rule"] == "drift" and alert["severity"] == "critical"
    assert alert["event_type"] == "monitor.violations"
    assert alert["resource"] == "monitor/x"
    assert alert["payload"]["drifted"] == ["dep_delay"]
    assert alert["dedup_key"] == "monitor/x" and alert["suppressed"] == 0
    assert alert["time"] == START.isoformat() and alert["test"] is False
    [fired] = alerts.fired()
    [delivery] = alerts.deliveries_of([fired.id])[fired.id]
    assert (delivery.state, delivery.attempts, delivery.status_code) == ("delivered", 1, 200)
    assert delivery.history[0]["outcome"] == "delivered"


def test_a_slack_webhook_gets_text_and_blocks(db: Database, hook: WebhookServer) -> None:
    alerts = _alerts(db)
    alerts.create_channel("chat", "webhook", {"url": hook.url(), "format": "slack"}, actor="t")
    _rule(alerts, ["chat"])
    _violations(alerts)

    alerts.process()

    body = hook.requests[0].json()
    assert set(body) == {"text", "blocks"}
    assert body["text"] == "[WARNING] drift: monitor.violations on monitor/x"
    assert [b["type"] for b in body["blocks"]] == ["section", "section", "context"]
    assert "dep_delay" in body["blocks"][1]["text"]["text"]


def test_an_email_alert_is_received_by_the_smtp_server(db: Database, mailbox: Mailbox) -> None:
    alerts = _alerts(
        db, smtp={"host": "127.0.0.1", "port": mailbox.port, "sender": "slipway@example.org"}
    )
    alerts.create_channel("oncall", "email", {"to": ["a@example.org", "b@example.org"]}, actor="t")
    _rule(alerts, ["oncall"])
    _violations(alerts, violations=7)

    [attempt] = alerts.process().attempts

    assert attempt.state == "delivered"
    [(envelope, message)] = mailbox.messages
    assert envelope.mail_from == "slipway@example.org"
    assert envelope.rcpt_tos == ["a@example.org", "b@example.org"]
    assert message["Subject"] == "[Slipway WARNING] drift: monitor.violations on monitor/x"
    text = message.get_payload(decode=True).decode()
    assert "Rule:      drift" in text and "Resource:  monitor/x" in text
    assert '"violations": 7' in text


def test_email_channels_need_an_smtp_server_in_the_settings(db: Database) -> None:
    alerts = _alerts(db)
    with pytest.raises(InvalidInput) as caught:
        alerts.create_channel("oncall", "email", {"to": ["a@example.org"]}, actor="t")
    assert caught.value.field == "kind"
    with pytest.raises(InvalidInput) as bad:
        _alerts(db, smtp={"host": "127.0.0.1"}).create_channel(
            "oncall", "email", {"to": ["not an address"]}, actor="t"
        )
    assert bad.value.field == "config.to"
    assert alerts.channels() == []


def test_a_log_alert_is_logged_at_the_rules_severity(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    alerts = _alerts(db)
    alerts.create_channel("log", "log", {}, actor="t")
    _rule(alerts, ["log"], severity="error")
    _violations(alerts)

    with caplog.at_level(logging.INFO, logger="slipway.alerts"):
        alerts.process()

    [record] = [r for r in caplog.records if r.name == "slipway.alerts"]
    assert record.levelno == logging.ERROR
    assert "drift: monitor.violations on monitor/x" in record.getMessage()


def test_the_cool_down_absorbs_repeats_then_lets_the_next_one_through(
    db: Database, hook: WebhookServer, clock: Clock
) -> None:
    alerts = _alerts(db)
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    _rule(alerts, ["ops"], cooldown_seconds=600)

    _violations(alerts)
    assert len(alerts.process().fired) == 1
    clock.advance(300)
    _violations(alerts)
    clock.advance(200)
    _violations(alerts)
    within = alerts.process()
    assert within.fired == [] and within.suppressed == 2 and within.attempts == []
    assert len(hook.requests) == 1

    clock.advance(100)  # 600 s after the alert: the cool-down is over
    _violations(alerts)
    after = alerts.process()
    assert len(after.fired) == 1
    assert len(hook.requests) == 2
    assert hook.requests[1].json()["alert"]["suppressed"] == 2
    first, second = sorted(alerts.fired(), key=lambda a: a.id)
    assert (first.suppressed, second.suppressed_before, second.suppressed) == (2, 2, 0)
    rule = alerts.rule("drift")
    assert (rule.fired, rule.suppressed) == (2, 2)


def test_each_dedup_key_has_its_own_cool_down(db: Database, hook: WebhookServer) -> None:
    alerts = _alerts(db)
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    _rule(alerts, ["ops"], cooldown_seconds=3600)
    alerts.create_rule(
        {
            "name": "by-endpoint",
            "event_types": ["monitor.*"],
            "channels": ["ops"],
            "dedup_by": "payload.endpoint",
            "cooldown_seconds": 3600,
        },
        actor="t",
    )
    for monitor in ("x", "y", "x", "y", "z"):
        _violations(alerts, monitor)

    processed = alerts.process()

    # drift keys on the resource (x, y, z); by-endpoint on the endpoint all three share.
    assert len(processed.fired) == 4 and processed.suppressed == 6
    keys = sorted((a.rule, a.dedup_key) for a in alerts.fired())
    assert keys == [
        ("by-endpoint", "flight-delay"),
        ("drift", "monitor/x"),
        ("drift", "monitor/y"),
        ("drift", "monitor/z"),
    ]
    assert len(hook.requests) == 4


def test_filters_types_and_history_decide_what_fires(db: Database, hook: WebhookServer) -> None:
    alerts = _alerts(db)
    alerts.events.append("endpoint.rolled_back", "endpoint/old", {})  # before the rule
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    alerts.create_rule(
        {
            "name": "rollbacks",
            "event_types": ["endpoint.rolled_back", "pipeline.execution_failed"],
            "channels": ["ops"],
            "filters": {"payload.environment": "production"},
            "cooldown_seconds": 0,
        },
        actor="t",
    )
    alerts.events.append("endpoint.rolled_back", "endpoint/a", {"environment": "staging"})
    alerts.events.append("endpoint.rolled_back", "endpoint/b", {"environment": "production"})
    alerts.events.append("endpoint.deployed", "endpoint/c", {"environment": "production"})
    alerts.events.append("pipeline.execution_failed", "execution/e1", {"environment": "production"})

    alerts.process()

    assert sorted(a.resource for a in alerts.fired()) == ["endpoint/b", "execution/e1"]
    # By the type of the event that raised them (the console's monitoring page: monitor.).
    assert [a.resource for a in alerts.fired(event_prefix="pipeline.")] == ["execution/e1"]
    assert [a.resource for a in alerts.fired(event_prefix="endpoint.")] == ["endpoint/b"]
    assert alerts.fired(event_prefix="endpoint_") == []  # a prefix, not a LIKE pattern
    alerts.set_rule_enabled("rollbacks", False)
    alerts.events.append("endpoint.rolled_back", "endpoint/d", {"environment": "production"})
    alerts.process()
    assert len(alerts.fired()) == 2


def test_a_failed_delivery_is_retried_and_every_attempt_recorded(
    db: Database, hook: WebhookServer
) -> None:
    alerts = _alerts(db)
    hook.replies = [(500, {})]
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    _rule(alerts, ["ops"])
    _violations(alerts)

    attempts = alerts.process().attempts

    assert [(a.state, a.status_code) for a in attempts] == [("pending", 500), ("delivered", 200)]
    assert len(hook.requests) == 2
    [fired] = alerts.fired()
    [delivery] = alerts.deliveries_of([fired.id])[fired.id]
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("delivered", 2, None)
    assert [(h["attempt"], h["outcome"], h["status_code"]) for h in delivery.history] == [
        (1, "failed", 500),
        (2, "delivered", 200),
    ]
    assert "500" in delivery.history[0]["error"]


def test_a_delivery_waits_out_its_backoff(db: Database, hook: WebhookServer) -> None:
    alerts = _alerts(db, backoff_seconds=3600)
    hook.replies = [(503, {})]
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    _rule(alerts, ["ops"])
    _violations(alerts)

    assert [a.state for a in alerts.process().attempts] == ["pending"]
    assert alerts.process().attempts == []  # not due for an hour
    [fired] = alerts.fired()
    [delivery] = alerts.deliveries_of([fired.id])[fired.id]
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at - delivery.updated_at == timedelta(seconds=3600)


def test_exhausted_retries_fail_the_delivery_and_raise_an_event_once(
    db: Database, hook: WebhookServer
) -> None:
    alerts = _alerts(db, max_attempts=3)
    hook.replies = [(500, {})] * 20
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    _rule(alerts, ["ops"])
    # Alerts on delivery failures, sent to the same broken channel: must not loop.
    alerts.create_rule(
        {"name": "failures", "event_types": [FAILED_EVENT], "channels": ["ops"]}, actor="t"
    )
    _violations(alerts)

    first = alerts.process()
    assert [a.state for a in first.attempts] == ["pending", "pending", "failed"]
    [failed] = alerts.events.read(types=[FAILED_EVENT])
    assert failed.resource == "alert_channel/ops"
    assert failed.payload["rule"] == "drift" and failed.payload["attempts"] == 3
    assert failed.payload["status_code"] == 500 and failed.payload["event_type"] == (
        "monitor.violations"
    )

    second = alerts.process()  # the failure event fires the failures rule, which fails too
    assert len(second.fired) == 1 and second.attempts[-1].state == "failed"
    for _ in range(3):
        alerts.process()
    assert len(alerts.events.read(types=[FAILED_EVENT])) == 1
    assert len(hook.requests) == 6


def test_a_refused_answer_is_not_retried(db: Database, hook: WebhookServer) -> None:
    alerts = _alerts(db)
    hook.replies = [(404, {})]
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    _rule(alerts, ["ops"])
    _violations(alerts)

    [attempt] = alerts.process().attempts

    assert (attempt.state, attempt.status_code, attempt.attempts) == ("failed", 404, 1)
    assert len(alerts.events.read(types=[FAILED_EVENT])) == 1


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/hook"]
)
def test_metadata_and_loopback_webhooks_are_refused_by_default(db: Database, url: str) -> None:
    alerts = _alerts(db, allowed_hosts=[])
    with pytest.raises(InvalidInput) as caught:
        alerts.create_channel("evil", "webhook", {"url": url}, actor="t")
    assert caught.value.field == "config.url"
    assert "alerts.allowed_hosts" in caught.value.message
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(AlertChannelRow)) == 0


def test_a_loopback_webhook_is_refused_again_at_send_time(
    db: Database, hook: WebhookServer
) -> None:
    # Saved while the operator allowed the host; the allowance is gone when it is sent.
    _alerts(db).create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    alerts = _alerts(db, allowed_hosts=[])
    _rule(alerts, ["ops"])
    _violations(alerts)

    [attempt] = alerts.process().attempts

    assert attempt.state == "failed" and attempt.attempts == 1
    assert attempt.error is not None and "loopback" in attempt.error
    assert hook.requests == []


def test_a_redirect_to_a_refused_address_is_not_followed(db: Database, hook: WebhookServer) -> None:
    with webhook_server() as inner:
        # localhost is allowed, 127.0.0.1 is not: the first hop passes, the second must not.
        alerts = _alerts(db, allowed_hosts=["localhost"])
        hook.replies = [(307, {"location": inner.url()})]
        alerts.create_channel("ops", "webhook", {"url": hook.url(host="localhost")}, actor="t")
        _rule(alerts, ["ops"])
        _violations(alerts)

        [attempt] = alerts.process().attempts

        assert attempt.state == "failed"
        assert attempt.error is not None and "'127.0.0.1' is a loopback address" in attempt.error
        assert len(hook.requests) == 1 and inner.requests == []


def test_a_redirect_to_an_allowed_host_is_followed(db: Database, hook: WebhookServer) -> None:
    alerts = _alerts(db)
    hook.replies = [(308, {"location": "/moved"})]
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    _rule(alerts, ["ops"])
    _violations(alerts)

    [attempt] = alerts.process().attempts

    assert attempt.state == "delivered"
    assert [r.path for r in hook.requests] == ["/hook", "/moved"]
    assert hook.requests[1].json()["alert"]["rule"] == "drift"


def test_a_test_notification_reaches_the_channel(db: Database, hook: WebhookServer) -> None:
    alerts = _alerts(db)
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")

    result = alerts.test("ops", actor="alice")

    assert result.delivered and result.status_code == 200
    alert = hook.requests[0].json()["alert"]
    assert alert["test"] is True and alert["resource"] == "alert_channel/ops"
    assert alerts.fired() == []
    hook.replies = [(500, {})]
    failed = alerts.test("ops")
    assert not failed.delivered and failed.status_code == 500
    with pytest.raises(NotFound):
        alerts.test("nope")


def test_rules_and_channels_check_their_references(db: Database, hook: WebhookServer) -> None:
    alerts = _alerts(db)
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    with pytest.raises(InvalidInput) as unknown:
        _rule(alerts, ["ops", "nope"])
    assert unknown.value.field == "channels.1"
    with pytest.raises(InvalidInput) as bad_type:
        _rule(alerts, ["ops"], event_types=["Monitor Violations"])
    assert bad_type.value.field == "event_types"
    with pytest.raises(InvalidInput) as bad_key:
        _rule(alerts, ["ops"], dedup_by=["payload"])
    assert bad_key.value.field == "dedup_by"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(AlertRuleRow)) == 0

    _rule(alerts, ["ops"])
    with pytest.raises(Conflict):
        _rule(alerts, ["ops"])
    with pytest.raises(Conflict) as used:
        alerts.delete_channel("ops")
    assert used.value.details["rules"] == ["drift"]
    alerts.update_rule("drift", {"event_types": ["endpoint.*"], "channels": ["ops"]})
    assert alerts.rule("drift").event_types == ["endpoint.*"]
    alerts.delete_rule("drift")
    alerts.delete_channel("ops")
    assert alerts.channels() == [] and alerts.rules() == []


def test_a_delivery_to_a_deleted_channel_fails_without_sending(
    db: Database, hook: WebhookServer
) -> None:
    alerts = _alerts(db)
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    alerts.create_channel("spare", "log", {}, actor="t")
    _rule(alerts, ["ops"])
    _violations(alerts)
    assert len(alerts.process(budget_seconds=0).fired) == 1  # recorded, not yet sent
    alerts.update_rule("drift", {"event_types": ["monitor.violations"], "channels": ["spare"]})
    alerts.delete_channel("ops")

    [attempt] = alerts.process().attempts

    assert (attempt.channel, attempt.state) == ("ops", "failed")
    assert attempt.error == "channel 'ops' no longer exists"
    assert hook.requests == []


def test_the_scheduler_raises_and_delivers_alerts(tmp_path: Path, hook: WebhookServer) -> None:
    settings = load_settings(home=tmp_path / "home", alerts={"allowed_hosts": ["127.0.0.1"]})
    services = Services.open(settings)
    stop = threading.Event()
    loop = threading.Thread(target=run_scheduler, args=(services, stop), kwargs={"interval": 0.1})
    try:
        services.alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
        services.alerts.create_rule(
            {"name": "rollbacks", "event_types": ["endpoint.rolled_back"], "channels": ["ops"]},
            actor="t",
        )
        loop.start()
        services.events.append("endpoint.rolled_back", "endpoint/flight-delay", {"to": 3})
        deadline = time.monotonic() + 30
        while not hook.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        [request] = hook.requests
        assert request.json()["alert"]["resource"] == "endpoint/flight-delay"
    finally:
        stop.set()
        loop.join(timeout=30)
        services.close()


def test_two_schedulers_deliver_each_alert_once(db: Database, hook: WebhookServer) -> None:
    first, second = _alerts(db), _alerts(db)
    first.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    _rule(first, ["ops"], cooldown_seconds=0)
    for n in range(12):
        _violations(first, f"m{n}")

    racers = (first, second, first, second)  # four ticks at once, two per "scheduler"
    barrier = threading.Barrier(len(racers))

    def run(alerts: Alerts) -> None:
        barrier.wait()
        alerts.process(limit=5, budget_seconds=10)

    threads = [threading.Thread(target=run, args=(a,)) for a in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    while first.process().fired:  # whatever the racing ticks left unread
        pass

    assert len(first.fired(limit=100)) == 12
    assert sorted(r.json()["alert"]["resource"] for r in hook.requests) == sorted(
        f"monitor/m{n}" for n in range(12)
    )
