"""The body of a Ray task: one work item's handler, run in a Ray worker process.

This is the same work a local :class:`~slipway.workers.worker.Worker` does — the same
:func:`~slipway.workers.handlers.handlers` function on a :class:`WorkContext`, through
the same boundary (:func:`~slipway.workers.executor.run_handler`) — only the process
differs. It does not touch the item's state in the queue: the driver
(:class:`~slipway.workers.ray_executor.RayWorker`) holds the lease, heartbeats it and
records the outcome, so a result reaches the queue only through the lease holder.

Nothing here imports Ray: Ray imports this module by name in its worker processes, and
the module stays importable (and testable) without the optional dependency.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import OrderedDict

from slipway.core.errors import NotFound
from slipway.core.queue import WorkItem, WorkState
from slipway.core.settings import Settings
from slipway.core.work import WorkContext
from slipway.runtime.childproc import start_fork_server
from slipway.services import Services
from slipway.workers.executor import Ending, Outcome, run_handler
from slipway.workers.handlers import handlers

LEASE_CHECK_SECONDS = 1.0
"""How often a running handler's ``lease_lost()`` may read the item's row."""

KEPT_PLATFORMS = 4
"""Platforms (one per driver's settings) a Ray worker process keeps open; in practice
one, as a worker process serves one driver, but a process hosting several drivers
(tests) must not keep a database pool per driver it ever served."""

_services: OrderedDict[str, Services] = OrderedDict()
_services_lock = threading.Lock()


def warm_up() -> None:
    """Ray's ``worker_process_setup_hook`` for Slipway's jobs: a Ray worker process pays
    its one-time costs when Ray starts it, not in its first item — importing the handlers
    (importing this module does), and the fork server's preloads, in the background."""
    start_fork_server()


def services_for(settings: Settings) -> Services:
    """This process's platform for ``settings``, opened on first use and kept: a Ray
    worker process runs many items, and opening the database, the stores and MLflow's
    client per item would cost more than most items."""
    key = settings.model_dump_json()
    with _services_lock:
        services = _services.get(key)
        if services is None:
            # The driver opened (and migrated) the database before claiming anything;
            # tasks racing each other to migrate would only wait on the lock.
            services = Services.open(settings, migrate=False)
            _services[key] = services
            while len(_services) > KEPT_PLATFORMS:
                _services.popitem(last=False)[1].close()
        _services.move_to_end(key)
        return services


class RemoteLease:
    """``lease_lost`` for a handler that does not run beside its lease holder: the item's
    row says whether ``worker_id`` still holds this attempt (cancelled, or expired and
    claimed again, and it does not). Read at most every :data:`LEASE_CHECK_SECONDS`;
    once lost, always lost."""

    def __init__(self, services: Services, item: WorkItem, worker_id: str) -> None:
        self.services = services
        self.item = item
        self.worker_id = worker_id
        self._lost = False
        self._checked = 0.0

    def lost(self) -> bool:
        if self._lost:
            return True
        now = time.monotonic()
        if now - self._checked < LEASE_CHECK_SECONDS:
            return False
        self._checked = now
        try:
            current = self.services.queue.get(self.item.id)
        except NotFound:
            self._lost = True
            return True
        self._lost = (
            current.state is not WorkState.CLAIMED
            or current.lease_owner != self.worker_id
            or current.attempts != self.item.attempts
        )
        return self._lost


def run_item(settings: Settings, item: WorkItem, worker_id: str) -> Outcome:
    """Run ``item``'s handler here and report the outcome; never raises for the handler's
    own errors (they are the outcome). The driver keeps the lease alive meanwhile, so
    the context's ``heartbeat`` has nothing to do."""
    try:
        services = services_for(settings)
    except Exception:  # a failed attempt like any other, retried while attempts remain
        return Outcome(Ending.FAILED, error=traceback.format_exc(), pid=os.getpid())
    lease = RemoteLease(services, item, worker_id)
    context = WorkContext.of(item, heartbeat=lambda: None, lease_lost=lease.lost)
    return run_handler(handlers(services)[item.kind], context)
