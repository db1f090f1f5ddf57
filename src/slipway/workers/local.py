"""The local executor: a claimed item's handler runs on a thread of the worker process.

A handler already puts user code in a process of its own (a pipeline step, a training
job, a trial: see :mod:`slipway.runtime`), so the worker only needs a thread to wait on
it while the loop keeps the lease. A local pool is several worker processes
(``slipway up`` starts ``workers.processes`` of them), each running one item at a time.

A thread cannot be killed, so cancelling a run asks it: the handler's ``lease_lost()``
turns true, and every long-running handler checks it (stopping its child process).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from slipway.core.queue import WorkItem
from slipway.core.work import Handler, WorkContext
from slipway.workers.executor import Ending, Lease, Outcome, run_handler


@dataclass(eq=False)
class LocalRun:
    """One item's handler on its thread."""

    item: WorkItem
    cancelled: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None


class LocalExecutor:
    """Runs up to ``capacity`` handlers from ``handlers`` at once, each on its own thread."""

    def __init__(self, handlers: Mapping[str, Handler], *, capacity: int = 1) -> None:
        self.handlers = dict(handlers)
        self._capacity = capacity
        self._ended = threading.Condition()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def kinds(self) -> Collection[str]:
        return self.handlers.keys()

    def open(self) -> None:
        """Nothing to join: the handlers are this process's."""

    def submit(self, item: WorkItem, lease: Lease) -> LocalRun:
        run = LocalRun(item)
        context = WorkContext.of(
            item,
            heartbeat=lease.heartbeat,
            lease_lost=lambda: run.cancelled.is_set() or lease.lease_lost(),
        )
        thread = threading.Thread(
            target=self._run,
            args=(run, self.handlers[item.kind], context),
            name=f"slipway-item-{item.id}",
            daemon=True,
        )
        thread.start()
        return run

    def poll(self, run: LocalRun) -> Outcome | None:
        return run.outcome

    def wait(self, runs: Sequence[LocalRun], timeout: float) -> None:
        with self._ended:
            self._ended.wait_for(lambda: any(r.outcome is not None for r in runs), timeout)

    def cancel(self, run: LocalRun) -> None:
        run.cancelled.set()

    def close(self) -> None:
        """Nothing to release; a handler still running ends with its lease."""

    def _run(self, run: LocalRun, handler: Handler, context: WorkContext) -> None:
        # Set unless the handler returns or raises an Exception (a SystemExit, say), so
        # the loop never waits on a thread that is gone.
        outcome = Outcome(Ending.CRASHED, error="the handler's thread ended without an outcome")
        try:
            outcome = run_handler(handler, context)
        finally:
            with self._ended:
                run.outcome = outcome
                self._ended.notify_all()
