"""Events: old ones every durable subscriber acknowledged go; the rest stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from slipway.core.clock import utcnow
from slipway.events.alerts import SUBSCRIBER as ALERTS
from slipway.events.triggers import SUBSCRIBER as TRIGGERS
from slipway.retention import GarbageCollector
from slipway.services import Services

LATER = timedelta(days=60)


def test_only_events_every_subscriber_acknowledged_go(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    events = services.events
    ids = [events.append("test.happened", f"thing/{n}").id for n in range(10)]
    gc = collector(events_days=30)

    # The platform's own subscribers have read nothing yet: nothing may go.
    report = gc.run(now=utcnow() + LATER).kind("events")
    assert report.deleted == 0 and report.protected == 10
    assert ALERTS in report.notes[0]

    events.subscription(ALERTS).ack(ids[8])
    events.subscription(TRIGGERS).ack(ids[9])
    events.subscription("my-consumer").ack(ids[4])
    assert gc.run().kind("events").deleted == 0  # acknowledged, but not old yet
    assert gc.run(dry_run=True, now=utcnow() + LATER).kind("events").deleted == 5
    assert [e.id for e in events.read()] == ids

    report = gc.run(now=utcnow() + LATER).kind("events")

    assert report.deleted == 5 and report.protected == 5
    assert "my-consumer" in report.notes[0]
    assert [e.id for e in events.read()] == ids[5:]
    # Unacknowledged events are still delivered to the subscriber that lags.
    assert [e.id for e in events.subscription("my-consumer").poll()] == ids[5:]
    assert events.append("test.happened", "thing/new").id > ids[-1]


def test_the_kafka_publisher_holds_events_when_kafka_is_configured(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    events = services.events
    last = [events.append("test.happened", "thing").id for _ in range(3)][-1]
    events.subscription(ALERTS).ack(last)
    events.subscription(TRIGGERS).ack(last)
    gc = collector(events_days=0)
    gc.kafka = True
    assert gc.run(now=utcnow() + LATER).kind("events").deleted == 0
    gc.kafka = False
    assert gc.run(now=utcnow() + LATER).kind("events").deleted == 3
