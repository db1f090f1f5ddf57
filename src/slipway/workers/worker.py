"""A local worker: the claim-lease-heartbeat loop with the local executor.

It claims items from its queues and runs each one's handler on a thread of this process
(:class:`~slipway.workers.local.LocalExecutor`), one at a time: a local pool is several
such processes. The loop's rules — leases, heartbeats, retries, a lost lease, a stop that
hands the item back, a database that is away — are :mod:`slipway.workers.loop`'s, the
same as the Ray executor's.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence

from slipway.core.work import Handler
from slipway.services import Services
from slipway.workers.handlers import WARM_UPS
from slipway.workers.handlers import handlers as default_handlers
from slipway.workers.local import LocalExecutor, LocalRun
from slipway.workers.loop import WorkLoop

log = logging.getLogger("slipway.worker")


class Worker(WorkLoop[LocalRun]):
    """A worker whose items run in this process (``handlers``: every kind's by default)."""

    def __init__(
        self,
        services: Services,
        *,
        queues: Sequence[str],
        worker_id: str | None = None,
        handlers: dict[str, Handler] | None = None,
    ) -> None:
        table = handlers if handlers is not None else default_handlers(services)
        super().__init__(
            services,
            LocalExecutor(table),
            queues=queues,
            worker_id=worker_id or f"{socket.gethostname()}:{os.getpid()}",
        )
        self.handlers = table

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
