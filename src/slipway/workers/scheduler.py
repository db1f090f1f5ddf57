"""The scheduler loop: fire due cron schedules, turn events into pipeline runs, advance
endpoint deployments, reconcile executions whose workers died, raise and deliver alerts,
and — when Kafka is configured — publish the events to Kafka. Several can run at once; the
database keeps each tick and each event handled exactly once."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from slipway.services import Services

if TYPE_CHECKING:
    from slipway.events.kafka import KafkaEventPublisher

log = logging.getLogger("slipway.scheduler")


def run_scheduler(services: Services, stop: threading.Event, *, interval: float = 1.0) -> None:
    publisher: KafkaEventPublisher | None = None
    log.info("scheduler running: a tick every %g s", interval)
    try:
        while not stop.is_set():
            try:
                for fired in services.schedules.tick():
                    log.info(
                        "schedule %s fired for %s: execution %s",
                        fired.schedule,
                        fired.fire_time.isoformat(),
                        fired.execution_id,
                    )
                for execution in services.triggers.process():
                    log.info("event trigger started execution %s", execution)
                services.deployments.tick()
                for run in services.monitoring.tick():
                    log.info("scheduled monitor run %s started", run)
            except Exception:  # keep scheduling: one bad tick must not stop the loop
                log.exception("scheduler tick failed")
            try:  # apart from the rest: a slow or failing channel must not hold up schedules
                processed = services.alerts.process()
                if processed.fired or processed.suppressed:
                    log.info(
                        "alerts: %d fired, %d suppressed by cool-down",
                        len(processed.fired),
                        processed.suppressed,
                    )
            except Exception:
                log.exception("processing alerts failed")
            if services.settings.kafka.bootstrap_servers:
                # Imported here: Kafka's client loads only where Kafka is configured.
                from slipway.events.kafka import KafkaEventPublisher

                # Apart from the rest: Kafka being away must not hold up schedules.
                try:
                    if publisher is None:  # kept across ticks: one producer, one connection
                        publisher = KafkaEventPublisher(
                            services.db, services.events, services.settings.kafka
                        )
                    publisher.tick()
                except Exception:
                    log.exception("publishing events to Kafka failed")
            stop.wait(interval)
    finally:
        if publisher is not None:
            publisher.close()
