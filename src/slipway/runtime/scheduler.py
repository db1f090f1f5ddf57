"""The scheduler loop: fire due cron schedules, turn events into pipeline runs, advance
endpoint deployments, and reconcile executions whose workers died. Several can run at
once; the database keeps each tick and each event handled exactly once."""

from __future__ import annotations

import logging
import threading

from slipway.services import Services

log = logging.getLogger("slipway.scheduler")


def run_scheduler(services: Services, stop: threading.Event, *, interval: float = 1.0) -> None:
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
        except Exception:  # keep scheduling: one bad tick must not stop the loop
            log.exception("scheduler tick failed")
        stop.wait(interval)
