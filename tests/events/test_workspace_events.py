"""Another workspace's events stay its own: the outbox reads them per workspace, and the
default workspace's alert rules never fire on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from slipway.core.db import Database
from slipway.core.events import EventLog
from slipway.core.settings import AlertSettings
from slipway.events.alerts import Alerts
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
