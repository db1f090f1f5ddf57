"""The contract between the claim-lease-heartbeat loop and what runs a claimed item.

:class:`~slipway.workers.loop.WorkLoop` claims items, holds their leases and records their
outcomes; an :class:`Executor` only runs them. Two implement it: the local one (a thread
of the worker process runs the handler: :class:`~slipway.workers.local.LocalExecutor`) and
the Ray one (a Ray task runs it on the cluster:
:class:`~slipway.workers.ray_executor.RayExecutor`). Keeping the lease out of the executor
is what makes the queue's guarantees the same on both: a result reaches the queue only
through the lease holder, and only while it still holds the lease.

Both executors run a handler through :func:`run_handler`, the user-code boundary, so an
error means the same thing wherever it was raised.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from slipway.core.errors import BackendUnavailable, LeaseLost
from slipway.core.queue import WorkItem
from slipway.core.work import Handler, PermanentFailure, WorkContext


class Ending(StrEnum):
    """How a run ended, which decides what the loop records in the queue."""

    SUCCEEDED = "succeeded"
    """The handler returned: the item completes with its result."""
    FAILED = "failed"
    """The handler raised: a failed attempt, retried while attempts remain (``retry``)."""
    CRASHED = "crashed"
    """The process running it died, or the executor could not run it: retried, like a
    worker's crash, while attempts remain — the queue decides, not the executor."""
    INTERRUPTED = "interrupted"
    """The handler met an unreachable metadata database: nothing in the work failed, it
    could not be recorded, so the item is given back and the attempt not counted."""
    LOST = "lost"
    """The handler stopped because it saw its lease lost: it wrote nothing, and nothing
    is recorded (the lease's new holder, if any, records its own outcome)."""


@dataclass(frozen=True)
class Outcome:
    """What a run reports: its ending, the handler's result or error, and where it ran
    (``pid`` of the process that ran the handler, ``cpus`` it was given when the executor
    allots CPUs), for logs and tests."""

    ending: Ending
    result: dict[str, Any] | None = None
    error: str | None = None
    retry: bool = True
    pid: int | None = None
    cpus: float | None = None


class Lease(Protocol):
    """The loop's hold on one claimed item, as the executor running it sees it."""

    @property
    def holder(self) -> str:
        """The worker id the lease is held under; a run that reads the item's row itself
        (on another machine) compares the row's holder with it."""
        ...

    def heartbeat(self) -> None:
        """Extend the lease now. The loop also extends it every third of the lease, so
        a handler calls this only to say it is alive sooner; never raises."""
        ...

    def lease_lost(self) -> bool:
        """True once the run should stop and write nothing: the lease was lost (the item
        was cancelled, or it expired and was claimed again) or the worker is handing
        its items back as it stops. Cheap: read in the handler's loops."""
        ...


Run = TypeVar("Run")


class Executor(Protocol[Run]):
    """Runs claimed items and reports how each ended; ``Run`` is its handle to one run.

    It never touches an item's state in the queue: the loop claims, heartbeats and
    records. The loop calls every method from its own thread, except that a handler may
    call its lease's methods from wherever it runs.
    """

    @property
    def capacity(self) -> int:
        """How many items may run at once; read after :meth:`open`."""
        ...

    @property
    def kinds(self) -> Collection[str]:
        """The item kinds it can run; the loop fails any other kind without retry."""
        ...

    def open(self) -> None:
        """Get ready to run items (join a cluster, size the pool); idempotent. Raises
        :class:`~slipway.core.errors.BackendUnavailable` when it cannot, so a bad address
        stops a worker at start."""
        ...

    def submit(self, item: WorkItem, lease: Lease) -> Run:
        """Start running ``item`` (of a kind in :attr:`kinds`, under ``lease``) and return
        at once with its handle. Raises only when the run could not be started."""
        ...

    def poll(self, run: Run) -> Outcome | None:
        """The run's outcome once it has ended (stopped, for a cancelled run), else
        ``None``; never raises. The same outcome on every call after it ended."""
        ...

    def wait(self, runs: Sequence[Run], timeout: float) -> None:
        """Block until one of ``runs`` has ended or ``timeout`` seconds pass (then
        :meth:`poll` says which); returns at once if one has ended already."""
        ...

    def cancel(self, run: Run) -> None:
        """Stop the run: its lease is gone, so its outcome no longer matters. It ends
        soon after (:meth:`poll` reports it then); a run already ended is left alone.
        How hard it is stopped is the executor's: a Ray task is killed, a local handler
        is asked (``lease_lost()`` turns true) as a thread cannot be killed. Never raises."""
        ...

    def close(self) -> None:
        """Release what :meth:`open` took; runs still going are the executor's to end."""
        ...


def run_handler(handler: Handler, context: WorkContext) -> Outcome:
    """Run ``handler`` on ``context`` and report how it ended: the boundary between user
    code and the worker. Never raises for the handler's own errors — they are the outcome
    (with their traceback, unless a :class:`PermanentFailure` says all there is to say)."""
    pid = os.getpid()
    try:
        result = handler(context)
    except LeaseLost:
        return Outcome(Ending.LOST, pid=pid)
    except PermanentFailure as exc:
        return Outcome(Ending.FAILED, error=exc.message, retry=False, pid=pid)
    except BackendUnavailable as exc:
        if exc.details.get("backend") == "database":
            return Outcome(Ending.INTERRUPTED, error=exc.message, pid=pid)
        # Other backends away (a Kafka broker for a batch chunk) are the item's failure,
        # retried with backoff and counted.
        return Outcome(Ending.FAILED, error=traceback.format_exc(), pid=pid)
    except Exception:
        return Outcome(Ending.FAILED, error=traceback.format_exc(), pid=pid)
    return Outcome(Ending.SUCCEEDED, result=result, pid=pid)
