"""Events published to Kafka by the scheduler: every event once, in order, keyed by resource,
the subscription moved only past what the broker acknowledged."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Message

from slipway.core.db import Database
from slipway.core.events import EventLog
from slipway.core.settings import KafkaSettings, load_settings
from slipway.events.kafka import SUBSCRIBER, KafkaEventPublisher
from slipway.services import Services
from slipway.workers.scheduler import run_scheduler
from tests.waiting import eventually

pytestmark = pytest.mark.kafka


def _consume(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([topic])
        while len(received) < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=count, timeout=0.5):
                if message.error() is not None:
                    raise KafkaException(message.error())
                received.append(message)
    finally:
        consumer.close()
    return received


def _publish_all(publisher: KafkaEventPublisher, count: int) -> int:
    published = 0
    deadline = time.monotonic() + 30
    while published < count and time.monotonic() < deadline:
        published += publisher.tick()
    return published


def test_events_are_published_in_order_and_acked_after_delivery(
    db: Database, kafka_bootstrap: str, kafka_topic: str
) -> None:
    log = EventLog(db)
    appended = [
        log.append("feature_group.created", "feature-group/weather", {"revision": 1}),
        log.append("model.approved", "model/delay/3", {"by": "ana", "note": "ok"}),
        log.append("feature_group.ingested", "feature-group/weather", {"rows": 10}),
        log.append("endpoint.status_changed", "endpoint/delay", {"status": "InService"}),
    ]
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, events_topic=kafka_topic)
    publisher = KafkaEventPublisher(db, log, kafka, batch=3)
    assert _publish_all(publisher, 4) == 4
    assert log.subscription(SUBSCRIBER).position == appended[-1].id
    assert publisher.tick() == 0  # nothing new: nothing sent again

    later = log.append("drift.detected", "monitor/delay", {"psi": 0.3})
    assert _publish_all(publisher, 1) == 1
    publisher.close()

    messages = _consume(kafka_bootstrap, kafka_topic, 5)
    assert len(messages) == 5
    bodies: list[dict[str, Any]] = [json.loads(m.value() or b"") for m in messages]
    expected = [*appended, later]
    assert [b["id"] for b in bodies] == [e.id for e in expected]
    for body, message, event in zip(bodies, messages, expected, strict=True):
        assert body == {
            "id": event.id,
            "type": event.type,
            "resource": event.resource,
            "body": event.payload,
            "time": event.time.isoformat().replace("+00:00", "Z"),
        }
        assert message.key() == event.resource.encode()
        assert dict(message.headers() or []) == {"slipway-event-type": event.type.encode()}


def test_nothing_is_acked_while_the_broker_is_away(db: Database) -> None:
    log = EventLog(db)
    log.append("model.approved", "model/delay/3")
    # Nothing listens on port 1: deliveries stay pending until their timeout.
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", events_topic="slipway.events")
    publisher = KafkaEventPublisher(db, log, kafka, wait_seconds=0.2)
    started = time.monotonic()
    assert publisher.tick() == 0 and publisher.tick() == 0
    assert time.monotonic() - started < 5  # a tick is bounded by wait_seconds
    assert log.subscription(SUBSCRIBER).position == 0


def test_the_scheduler_publishes_events_when_kafka_is_configured(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        kafka={"bootstrap_servers": kafka_bootstrap, "events_topic": kafka_topic},
    )
    services = Services.open(settings)
    stop = threading.Event()
    loop = threading.Thread(target=run_scheduler, args=(services, stop), kwargs={"interval": 0.1})
    loop.start()
    try:
        services.features.create_group(
            {
                "name": "weather",
                "record_identifiers": [{"name": "origin"}],
                "features": [{"name": "temp", "type": "float"}],
            }
        )
        messages = _consume(kafka_bootstrap, kafka_topic, 1)
        body = json.loads(messages[0].value() or b"")
        assert body["type"] == "feature_group.created"
        assert body["resource"] == "feature-group/weather"
        # A consumer can read the message before the broker's acknowledgement reaches the
        # producer; the subscription moves on the tick that settles it.
        eventually(
            lambda: services.events.subscription(SUBSCRIBER).position == body["id"],
            what="the subscription acknowledges the delivered event",
        )
        stop.set()
        loop.join(timeout=30)
        assert not loop.is_alive()
    finally:
        stop.set()
        loop.join(timeout=30)
        services.close()
