"""A gateway worker's share of the traffic counters, written from another OS process.

:func:`gateway_worker` is the target of a ``multiprocessing`` spawn: a new interpreter
imports this module to run it, so it imports no more than counting and writing needs.
"""

from __future__ import annotations

from datetime import datetime

from slipway.core.db import Database
from slipway.serving.stats import Counters, Key, write_counts

FLUSHES = 4


def gateway_worker(
    url: str,
    gateway_id: str,
    windows: list[datetime],
    total_ms: list[float],
    model_ms: list[float],
) -> None:
    """Count the requests of endpoint ``lat``, variant ``main``, config 1 in memory and
    add them to this worker's rows in ``FLUSHES`` writes (as a gateway does once a
    second), spread evenly over ``windows``; every 50th request failed."""
    database = Database(url)
    try:
        per_flush = -(-len(total_ms) // FLUSHES)
        for flush in range(FLUSHES):
            window = windows[flush * len(windows) // FLUSHES]
            counts: dict[Key, Counters] = {("lat", 1, "main", window): Counters()}
            for i in range(flush * per_flush, min(len(total_ms), (flush + 1) * per_flush)):
                counts["lat", 1, "main", window].observe(
                    total_ms[i], model_ms[i], error=i % 50 == 0
                )
            with database.write() as session:
                write_counts(session, gateway_id, counts)
    finally:
        database.dispose()
