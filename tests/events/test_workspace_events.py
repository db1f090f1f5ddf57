"""Another workspace's events stay its own: the outbox reads them per workspace, and the
default workspace's alert rules never fire on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from slipway.core.db import Database
from slipway.core.errors import NotFound
from slipway.core.events import EventLog
from slipway.core.settings import AlertSettings
from slipway.events.alerts import Alerts
from slipway.security.audit import AuditLog
from tests.events.receivers import WebhookServer, webhook_server


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


def test_the_outbox_reads_one_workspaces_events(db: Database) -> None:
    events = EventLog(db)
    events.append("feature_group.created", "feature-group/churn", {})
    events.append("feature_group.created", "workspaces/fraud/feature-group/churn", {})
    events.append("feature_group.created", "workspaces/a_b/feature-group/churn", {})
    events.append("feature_group.created", "workspaces/axb/feature-group/churn", {})
    assert [e.resource for e in events.read(workspace="default")] == ["feature-group/churn"]
    assert [e.resource for e in events.read(workspace="fraud")] == [
        "workspaces/fraud/feature-group/churn"
    ]
    # "_" is a name character, not a pattern: a_b's events are not axb's.
    assert [e.resource for e in events.read(workspace="a_b")] == [
        "workspaces/a_b/feature-group/churn"
    ]
    assert len(events.read()) == 4  # the platform's own readers see everything


def test_alert_rules_fire_on_their_workspaces_events_only(
    db: Database, hook: WebhookServer
) -> None:
    alerts = Alerts(
        AlertSettings(allowed_hosts=["127.0.0.1"], backoff_seconds=0.0), db, EventLog(db)
    )
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    alerts.create_rule(
        {"name": "ingests", "event_types": ["feature_group.*"], "channels": ["ops"]}, actor="t"
    )
    alerts.events.append("feature_group.ingested", "workspaces/fraud/feature-group/churn", {})
    alerts.process()
    assert list(alerts.fired()) == []
    alerts.events.append("feature_group.ingested", "feature-group/churn", {})
    alerts.process()
    assert [a.resource for a in alerts.fired()] == ["feature-group/churn"]


def test_each_workspace_has_its_own_channels_rules_and_alerts(
    db: Database, hook: WebhookServer
) -> None:
    """``ops`` and ``ingests`` in two workspaces: each rule matches its workspace's events
    (its filter naming the resource as its workspace does), sends to its own ``ops``, and
    each workspace lists its own alerts."""
    ours = Alerts(AlertSettings(allowed_hosts=["127.0.0.1"], backoff_seconds=0.0), db, EventLog(db))
    theirs = ours.in_workspace("fraud")
    for alerts, path in ((ours, "/ours"), (theirs, "/theirs")):
        alerts.create_channel("ops", "webhook", {"url": hook.url(path)}, actor="t")
        alerts.create_rule(
            {
                "name": "ingests",
                "event_types": ["feature_group.*"],
                "filters": {"resource": "feature-group/churn"},
                "channels": ["ops"],
            },
            actor="t",
        )
    assert [c.name for c in theirs.channels()] == ["ops"] == [c.name for c in ours.channels()]
    ours.events.append("feature_group.ingested", "workspaces/fraud/feature-group/churn", {})
    ours.events.append("feature_group.ingested", "workspaces/fraud/feature-group/other", {})
    ours.events.append("feature_group.ingested", "workspaces/growth/feature-group/churn", {})
    processed = ours.process()  # one processor, every workspace's rules
    assert len(processed.fired) == 1
    [fired] = theirs.fired()
    assert fired.resource == "workspaces/fraud/feature-group/churn"
    assert list(ours.fired()) == []
    [request] = hook.requests
    assert request.path == "/theirs"
    ours.events.append("feature_group.ingested", "feature-group/churn", {})
    ours.process()
    assert [r.path for r in hook.requests] == ["/theirs", "/ours"]
    assert [a.resource for a in ours.fired()] == ["feature-group/churn"]
    # A workspace reaches none of the other's by name or id.
    with pytest.raises(NotFound):
        ours.alert(fired.id)
    theirs.delete_rule("ingests", actor="t")
    assert [r.name for r in ours.rules()] == ["ingests"]
    entries = {e.resource for e in AuditLog(db).list(action="alert_rule.delete")}
    assert entries == {"workspaces/fraud/alert-rule/ingests"}
