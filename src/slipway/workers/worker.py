"""A worker: claim an item, run its handler with a heartbeat, record the outcome.

User-code errors become the item's failure with their traceback (retried with backoff
while attempts remain). A lost lease (cancelled, or expired and taken by another worker)
stops the heartbeat and the result is discarded — the new holder's result wins.

SIGTERM and SIGINT stop claiming and ask the item in hand to stop: its handler sees
``lease_lost()`` turn true (the same signal as a lost lease: stop, write nothing), and the
worker then gives the item back to the queue at once (``WorkQueue.release``) instead of
letting its lease run out, so another worker takes it within a poll. A handler that never
asks simply finishes, and its outcome is recorded as usual. Either way a supervisor's stop
(SIGTERM, a grace period, SIGKILL) ends with nothing held.

A metadata database that is away for a while (restarted, failed over) stops nothing: a
claim or a heartbeat that cannot reach it is tried again on the next poll or beat; an item
whose handler met it is given back (its attempt not counted: nothing in it failed), and
recording any outcome waits for the database to come back (up to ``SETTLE_SECONDS``; past
that the lease runs out and the item is run again, as after a crash).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from types import FrameType

from slipway.core.errors import BackendUnavailable, LeaseLost
from slipway.core.queue import WorkItem
from slipway.core.work import Handler, PermanentFailure, WorkContext
from slipway.services import Services
from slipway.workers.handlers import WARM_UPS
from slipway.workers.handlers import handlers as default_handlers

log = logging.getLogger("slipway.worker")

# How long recording an item's outcome waits for an unreachable database.
SETTLE_SECONDS = 60.0


class Worker:
    def __init__(
        self,
        services: Services,
        *,
        queues: Sequence[str],
        worker_id: str | None = None,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        self.services = services
        self.queues = list(queues)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.handlers = handlers if handlers is not None else default_handlers(services)
        self.stopping = threading.Event()
        # Set with ``stopping`` by a signal: the item in hand is asked to stop and is then
        # given back to the queue (see the module docstring).
        self.releasing = threading.Event()
        cfg = services.settings.workers
        self.lease_seconds = cfg.lease_seconds
        self.poll_seconds = cfg.poll_seconds

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("worker %s: signal %d, handing back the current item", self.worker_id, signum)
            self.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def stop(self) -> None:
        """Stop claiming, and hand the item in progress back (see the module docstring)."""
        self.stopping.set()
        self.releasing.set()

    def warm_up(self) -> None:
        """Pay the one-time costs of the queues served (the fork server, MLflow's store)
        now, before the first claim: a long-running worker's first trial or step then
        costs what every later one does. Failures only log: the item will meet them."""
        done: set[object] = set()
        for queue in self.queues:
            for warm in WARM_UPS.get(queue, ()):
                if warm in done:
                    continue
                done.add(warm)
                try:
                    warm(self.services)
                except Exception as exc:
                    log.warning("worker %s: warm-up failed: %s", self.worker_id, exc)

    def run(self, *, max_items: int | None = None) -> int:
        """Work until stopped (or ``max_items`` are done); returns how many were run."""
        done = 0
        while not self.stopping.is_set() and (max_items is None or done < max_items):
            try:
                item = self.services.queue.claim(
                    self.queues, self.worker_id, lease_seconds=self.lease_seconds
                )
            except BackendUnavailable as exc:
                log.warning("worker %s: cannot claim work: %s", self.worker_id, exc.message)
                self.stopping.wait(max(self.poll_seconds, 0.5))
                continue
            if item is None:
                self.stopping.wait(self.poll_seconds)
                continue
            self.run_one(item)
            done += 1
        return done

    def run_one(self, item: WorkItem) -> None:
        queue = self.services.queue
        handler = self.handlers.get(item.kind)
        if handler is None:
            queue.fail(item.id, self.worker_id, f"no handler for kind {item.kind!r}", retry=False)
            return
        lost = threading.Event()
        beating = threading.Event()

        def beat() -> None:
            try:
                queue.heartbeat(item.id, self.worker_id, lease_seconds=self.lease_seconds)
            except LeaseLost:
                lost.set()
            except BackendUnavailable as exc:  # the next beat tries again
                log.warning("worker %s: heartbeat missed: %s", self.worker_id, exc.message)

        def heartbeat_loop() -> None:
            while not beating.wait(self.lease_seconds / 3):
                beat()
                if lost.is_set():
                    return

        asked_to_stop = threading.Event()

        def lease_lost() -> bool:
            if lost.is_set():
                return True
            if self.releasing.is_set():
                asked_to_stop.set()  # the handler saw it: its outcome is not the work's
                return True
            return False

        ticker = threading.Thread(target=heartbeat_loop, daemon=True)
        ticker.start()
        context = WorkContext.of(item, heartbeat=beat, lease_lost=lease_lost)
        try:
            result = handler(context)
        except Exception as exc:
            beating.set()
            ticker.join()
            if (asked_to_stop.is_set() or _database_away(exc)) and not lost.is_set():
                self._settle(lambda: queue.release(item.id, self.worker_id))
                log.info("work item %d (%s) handed back", item.id, item.kind)
                return
            if isinstance(exc, LeaseLost):
                log.warning("worker %s: %s; result discarded", self.worker_id, exc.message)
                return
            error = exc.message if isinstance(exc, PermanentFailure) else traceback.format_exc()
            retry = not isinstance(exc, PermanentFailure)
            self._settle(lambda: queue.fail(item.id, self.worker_id, error, retry=retry))
            log.warning("work item %d (%s) failed:\n%s", item.id, item.kind, error)
            return
        beating.set()
        ticker.join()
        if asked_to_stop.is_set() and not lost.is_set():
            self._settle(lambda: queue.release(item.id, self.worker_id))
            log.info("work item %d (%s) handed back", item.id, item.kind)
            return
        self._settle(lambda: queue.complete(item.id, self.worker_id, result))

    def _settle(self, action: Callable[[], object]) -> None:
        """Record an outcome, waiting (with backoff) for an unreachable database."""
        deadline = time.monotonic() + SETTLE_SECONDS
        pause = 0.1
        while True:
            try:
                action()
                return
            except LeaseLost as exc:
                log.warning("worker %s: %s; result discarded", self.worker_id, exc.message)
                return
            except BackendUnavailable as exc:
                if time.monotonic() + pause > deadline:
                    log.warning("worker %s: outcome not recorded: %s", self.worker_id, exc.message)
                    return
                time.sleep(pause)
                pause = min(pause * 2, 2.0)


def _database_away(exc: Exception) -> bool:
    """The handler stopped because the metadata database could not be reached: the item
    did not fail, it could not be recorded. (Other backends away — a Kafka broker for a
    batch chunk — are the item's failure, retried with backoff and counted.)"""
    return isinstance(exc, BackendUnavailable) and exc.details.get("backend") == "database"
