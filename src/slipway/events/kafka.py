"""Publishing Slipway's events to a Kafka topic, for consumers outside the platform.

When Kafka is configured, the scheduler calls :meth:`KafkaEventPublisher.tick` once per
tick: it reads the events outbox through the durable subscription
``slipway-kafka-publisher`` and produces each event to ``kafka.events_topic`` (default
``slipway.events``).

Message layout (documented contract):

- key: the event's resource (``endpoint/flight-delay``), so the events of one resource stay
  in one partition, in id order;
- value: JSON ``{"id", "type", "resource", "body", "time"}`` — ``body`` is the event's
  payload, ``time`` ISO 8601 UTC;
- header ``slipway-event-type``: the type, for consumers that filter without parsing.

Delivery is at-least-once. The producer is idempotent with ``acks=all`` (no duplicates or
reordering from its own retries), and the subscription is acknowledged only up to the last
event whose delivery — and that of every event before it — the broker confirmed. A crash
between delivery and acknowledgement publishes those events again: consumers deduplicate
by ``id``.

A tick never waits longer than ``wait_seconds`` for acknowledgements, so an absent broker
delays the scheduler's other work by at most that much per tick. Events still in flight
stay in flight: a later tick settles them instead of producing them again. A failed
delivery (the broker away past the delivery timeout) drops the batch, and the next tick
polls again from the last acknowledged event. Ticks take a named lock, so several
schedulers take turns; a scheduler that takes over while another's batch is still in
flight may publish some events twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from confluent_kafka import KafkaError, Message, Producer

from slipway.core.db.engine import Database
from slipway.core.events import Event, EventLog
from slipway.core.kafka import client_config
from slipway.core.locks import named_lock
from slipway.core.settings import KafkaSettings

log = logging.getLogger("slipway.events.kafka")

SUBSCRIBER = "slipway-kafka-publisher"
BATCH = 500
DELIVERY_SECONDS = 30.0


@dataclass
class _InFlight:
    """One polled batch of events: their ids in order and each delivery's outcome."""

    ids: list[int]
    errors: dict[int, KafkaError | None] = field(default_factory=dict)

    def callback(self, event_id: int) -> Callable[[KafkaError | None, Message], None]:
        def delivered(error: KafkaError | None, _message: Message) -> None:
            self.errors[event_id] = error

        return delivered


class KafkaEventPublisher:
    """Publish the events outbox to a Kafka topic; see the module."""

    def __init__(
        self,
        db: Database,
        events: EventLog,
        kafka: KafkaSettings,
        *,
        topic: str | None = None,
        batch: int = BATCH,
        wait_seconds: float = 1.0,
    ) -> None:
        self.topic = topic or kafka.events_topic
        self.batch = batch
        self.wait_seconds = wait_seconds
        self._db = db
        self._subscription = events.subscription(SUBSCRIBER)
        self._config = client_config(kafka) | {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "delivery.timeout.ms": int(DELIVERY_SECONDS * 1000),
            "client.id": "slipway-events",
        }
        self._producer = Producer(self._config)
        self._in_flight: _InFlight | None = None

    def tick(self) -> int:
        """Produce new events, wait up to ``wait_seconds`` for acknowledgements, and move
        the subscription past every event delivered in order; returns how many it moved."""
        with named_lock(self._db, SUBSCRIBER):
            if self._in_flight is None:
                events = self._subscription.poll(limit=self.batch)
                if not events:
                    return 0
                self._in_flight = self._produce(events)
            self._producer.flush(self.wait_seconds)
            return self._settle(self._in_flight)

    def close(self) -> None:
        """Wait up to ``wait_seconds`` for outstanding deliveries (unacknowledged events
        are published again by the next publisher)."""
        self._producer.flush(self.wait_seconds)

    def _produce(self, events: list[Event]) -> _InFlight:
        batch = _InFlight([e.id for e in events])
        for event in events:
            value = orjson.dumps(
                {
                    "id": event.id,
                    "type": event.type,
                    "resource": event.resource,
                    "body": event.payload,
                    "time": event.time.isoformat().replace("+00:00", "Z"),
                }
            )
            while True:
                try:
                    self._producer.produce(
                        self.topic,
                        value=value,
                        key=event.resource,
                        headers=[("slipway-event-type", event.type)],
                        on_delivery=batch.callback(event.id),
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    self._producer.poll(0.05)
        return batch

    def _settle(self, batch: _InFlight) -> int:
        delivered = 0
        failure: KafkaError | None = None
        for event_id in batch.ids:
            if event_id not in batch.errors:
                break  # still in flight
            failure = batch.errors[event_id]
            if failure is not None:
                break
            delivered += 1
        if delivered:
            self._subscription.ack(batch.ids[delivered - 1])
            batch.ids = batch.ids[delivered:]
        if not batch.ids:
            self._in_flight = None
        elif failure is not None:
            log.warning(
                "publishing event %d to %s failed (retried next tick): %s",
                batch.ids[0],
                self.topic,
                failure.str(),
            )
            self._in_flight = None
            if failure.fatal():  # the idempotent producer cannot go on: start a new one
                self._producer = Producer(self._config)
        return delivered
