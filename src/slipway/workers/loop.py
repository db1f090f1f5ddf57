"""The one claim-lease-heartbeat loop, over any :class:`~slipway.workers.executor.Executor`.

A worker claims items from its queues while its executor has room, holds each item's
lease (heartbeats every third of the lease for every item in flight), and records how
each run ended — the handler's result, its error with the traceback (retried with
backoff while attempts remain), a ``PermanentFailure`` (not retried), or the death of the
process running it (retried: the queue decides, not the executor). Whatever executes the
item, these rules are the same because this loop is the only code that applies them.

A lost lease (the item was cancelled, or it expired and another worker claimed it) gets
its run cancelled and its result discarded — the new holder's result wins.

``stop()`` (SIGTERM, SIGINT) stops claiming and asks the items in hand to stop: a
handler that can see the worker's lease (a local one) sees ``lease_lost()`` turn true,
and the item is then given back to the queue at once (``WorkQueue.release``) instead of
letting its lease run out, so another worker takes it within a poll. A handler that never
asks — or cannot, as a Ray task reads the lease from the item's row — simply finishes,
and its outcome is recorded as usual. Either way a supervisor's stop (SIGTERM, a grace
period, SIGKILL) ends with nothing held.

A metadata database that is away for a while (restarted, failed over) stops nothing: a
claim or a heartbeat that cannot reach it is tried again on the next poll or beat; an item
whose handler met it is given back (its attempt not counted: nothing in it failed), and
recording any outcome waits for the database to come back (up to ``SETTLE_SECONDS``; past
that the lease runs out and the item is run again, as after a crash).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Generic

from slipway.core.errors import BackendUnavailable, LeaseLost
from slipway.core.queue import WorkItem
from slipway.services import Services
from slipway.workers.executor import Ending, Executor, Outcome, Run

log = logging.getLogger("slipway.worker")

SETTLE_SECONDS = 60.0
"""How long recording an item's outcome waits for an unreachable database."""
HISTORY = 1000
"""How many finished runs :attr:`WorkLoop.finished` keeps."""


@dataclass(frozen=True)
class Finished:
    """How an item in flight ended, for logs and inspection: ``succeeded``, ``failed``
    (the handler's error, or no handler for its kind), ``crashed`` (the process running
    it died, or it could not be run), ``released`` (given back: the worker stopped, or
    the database was away), ``cancelled`` (lease lost while running: run cancelled) or
    ``discarded`` (lease lost as it finished). ``pid`` is the process that ran the
    handler and ``cpus`` what it was given, when the executor says."""

    item_id: int
    kind: str
    cpus: float | None
    state: str
    pid: int | None = None


@dataclass(eq=False)
class _Flight(Generic[Run]):
    """One item in flight: the loop's side of its lease (the executor's ``Lease``)."""

    item: WorkItem
    loop: WorkLoop[Run]
    run: Run | None = None
    lost: threading.Event = field(default_factory=threading.Event)
    asked_to_stop: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False

    @property
    def holder(self) -> str:
        return self.loop.worker_id

    def heartbeat(self) -> None:
        self.loop.beat(self)

    def lease_lost(self) -> bool:
        if self.lost.is_set():
            return True
        if self.loop.releasing.is_set():
            self.asked_to_stop.set()  # the handler saw it: its outcome is not the work's
            return True
        return False


class WorkLoop(Generic[Run]):
    """Claims work from ``queues`` for ``worker_id`` and has ``executor`` run it."""

    def __init__(
        self,
        services: Services,
        executor: Executor[Run],
        *,
        queues: Sequence[str],
        worker_id: str,
    ) -> None:
        self.services = services
        self.executor = executor
        self.queues = list(queues)
        self.worker_id = worker_id
        cfg = services.settings.workers
        self.lease_seconds = cfg.lease_seconds
        self.poll_seconds = cfg.poll_seconds
        self.stopping = threading.Event()
        """Set: claim nothing more; :meth:`run` returns once the items in flight end."""
        self.releasing = threading.Event()
        """Set with ``stopping`` by :meth:`stop`: the items in hand are asked to stop and
        are then given back to the queue."""
        self.finished: deque[Finished] = deque(maxlen=HISTORY)
        """The last items this worker had in flight, oldest first."""
        self._flights: dict[int, _Flight[Run]] = {}
        self._lock = threading.Lock()

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("worker %s: signal %d, handing back the items in hand", self.worker_id, signum)
            self.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def stop(self) -> None:
        """Stop claiming, and hand the items in progress back (see the module docstring)."""
        self.stopping.set()
        self.releasing.set()

    @property
    def in_flight(self) -> int:
        """How many items this worker runs now."""
        with self._lock:
            return len(self._flights)

    def run(self, *, max_items: int | None = None) -> int:
        """Work until stopped (or until ``max_items`` were claimed and have ended);
        returns how many items were claimed."""
        self.executor.open()
        claimed = 0
        done = threading.Event()
        ticker = threading.Thread(
            target=self._heartbeat_loop, args=(done,), name="slipway-heartbeat", daemon=True
        )
        ticker.start()
        try:
            while True:
                self._cancel_lost()
                while (
                    not self.stopping.is_set()
                    and self.in_flight < self.executor.capacity
                    and (max_items is None or claimed < max_items)
                ):
                    item = self._claim()
                    if item is None:
                        break
                    claimed += 1
                    self._start(item)
                self._reap()
                with self._lock:
                    runs = [f.run for f in self._flights.values() if f.run is not None]
                if not runs:
                    if self.stopping.is_set() or (max_items is not None and claimed >= max_items):
                        return claimed
                    self.stopping.wait(self.poll_seconds)
                    continue
                self.executor.wait(runs, self.poll_seconds)
                self._reap()
        finally:
            done.set()
            ticker.join()

    def beat(self, flight: _Flight[Run]) -> None:
        """Extend ``flight``'s lease; a lost lease marks it lost (the loop then cancels
        its run). An unreachable database only logs: the next beat tries again."""
        try:
            self.services.queue.heartbeat(
                flight.item.id, self.worker_id, lease_seconds=self.lease_seconds
            )
        except LeaseLost:
            flight.lost.set()
        except BackendUnavailable as exc:
            log.warning("worker %s: heartbeat missed: %s", self.worker_id, exc.message)
        except Exception as exc:  # a beat that dies would let the lease run out silently
            log.warning("worker %s: heartbeat failed: %s", self.worker_id, exc)

    def _claim(self) -> WorkItem | None:
        try:
            return self.services.queue.claim(
                self.queues, self.worker_id, lease_seconds=self.lease_seconds
            )
        except BackendUnavailable as exc:
            log.warning("worker %s: cannot claim work: %s", self.worker_id, exc.message)
            self.stopping.wait(max(self.poll_seconds, 0.5))
            return None

    def _start(self, item: WorkItem) -> None:
        queue = self.services.queue
        if item.kind not in self.executor.kinds:
            error = f"no handler for kind {item.kind!r}"
            self._settle(lambda: queue.fail(item.id, self.worker_id, error, retry=False))
            self.finished.append(Finished(item.id, item.kind, None, "failed"))
            return
        flight: _Flight[Run] = _Flight(item, self)
        with self._lock:
            self._flights[item.id] = flight
        try:
            run = self.executor.submit(item, flight)
        except Exception as exc:
            with self._lock:
                del self._flights[item.id]
            error = f"the {type(self.executor).__name__} could not start it: {exc}"
            self._settle(lambda: queue.fail(item.id, self.worker_id, error, retry=True))
            self.finished.append(Finished(item.id, item.kind, None, "crashed"))
            log.warning("work item %d (%s) failed: %s", item.id, item.kind, error)
            return
        with self._lock:
            flight.run = run

    def _heartbeat_loop(self, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            with self._lock:
                flights = [f for f in self._flights.values() if not f.lost.is_set()]
            for flight in flights:
                self.beat(flight)

    def _cancel_lost(self) -> None:
        with self._lock:
            lost = [
                f
                for f in self._flights.values()
                if f.lost.is_set() and not f.cancelled and f.run is not None
            ]
        for flight in lost:
            flight.cancelled = True
            assert flight.run is not None
            self.executor.cancel(flight.run)
            log.warning(
                "work item %d (%s): lease lost; its run is cancelled and its result discarded",
                flight.item.id,
                flight.item.kind,
            )

    def _reap(self) -> None:
        with self._lock:
            flights = [f for f in self._flights.values() if f.run is not None]
        for flight in flights:
            assert flight.run is not None
            outcome = self.executor.poll(flight.run)
            if outcome is None:
                continue
            with self._lock:
                del self._flights[flight.item.id]
            self._record(flight, outcome)

    def _record(self, flight: _Flight[Run], outcome: Outcome) -> None:
        """Write ``outcome`` to the queue by this loop's rules (the module docstring)."""
        item, queue = flight.item, self.services.queue
        if flight.lost.is_set():
            state = "cancelled" if flight.cancelled else "discarded"
            log.warning("work item %d (%s): lease lost; result discarded", item.id, item.kind)
        elif flight.asked_to_stop.is_set() or outcome.ending is Ending.INTERRUPTED:
            state = "released"
            self._settle(lambda: queue.release(item.id, self.worker_id))
            log.info("work item %d (%s) handed back", item.id, item.kind)
        elif outcome.ending is Ending.LOST:
            state = "discarded"
            log.warning(
                "work item %d (%s) saw its lease lost; result discarded", item.id, item.kind
            )
        elif outcome.ending is Ending.SUCCEEDED:
            state = "succeeded"
            self._settle(lambda: queue.complete(item.id, self.worker_id, outcome.result))
        else:
            crashed = outcome.ending is Ending.CRASHED
            state = "crashed" if crashed else "failed"
            error = outcome.error or state
            retry = crashed or outcome.retry
            self._settle(lambda: queue.fail(item.id, self.worker_id, error, retry=retry))
            log.warning("work item %d (%s) failed:\n%s", item.id, item.kind, error)
        self.finished.append(Finished(item.id, item.kind, outcome.cpus, state, outcome.pid))

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
