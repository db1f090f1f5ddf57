"""The Ray executor: claimed items run as tasks on a Ray cluster.

:class:`RayWorker` is the claim-lease-heartbeat loop (:mod:`slipway.workers.loop`, the
same as a local :class:`~slipway.workers.worker.Worker`'s) with :class:`RayExecutor`: it
keeps up to ``max_in_flight`` items running at once, each as a Ray task
(:func:`slipway.workers.ray_task.run_item`) that calls the same handler in a Ray worker
process. This process (Ray's "driver") owns every lease, so:

- a lost lease (the item was cancelled, or it expired and someone else claimed it) gets
  its task force-cancelled (``ray.cancel(force=True)``) and its result discarded;
- the task's worker process dying is a crash, retried while attempts remain: the queue,
  not Ray, decides — tasks are submitted with ``max_retries=0`` so a crash is counted as
  an attempt like a local worker's crash;
- it asks Ray for the CPUs the step, job or trial declared (``cpus``, default 1), capped
  at the largest node, so Ray places work by resources and never waits forever for a
  node that does not exist — as locally, ``cpus`` means "at most this many cores".

SIGTERM and SIGINT stop claiming; the items in flight are finished first (a task reads
its lease from the item's row, so it cannot see the driver stopping).

Work reaches the cluster as Ray transports it between Slipway's own processes (the
settings and the claimed item); nothing a request sent is unpickled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

# Ray reads these when it is imported or initialised. A driver run under `uv run` would
# have Ray rebuild the project's environment for its workers (Ray's uv hook) instead of
# using the Slipway installed on the cluster; and a self-hosted platform phones nobody.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
import ray.exceptions

from slipway.core.db.engine import Database
from slipway.core.errors import BackendUnavailable
from slipway.core.queue import WorkItem
from slipway.core.settings import Settings
from slipway.services import Services
from slipway.workers.executor import Ending, Lease, Outcome
from slipway.workers.handlers import KINDS
from slipway.workers.loop import WorkLoop
from slipway.workers.ray_task import run_item
from slipway.workers.resources import declared_cpus

log = logging.getLogger("slipway.worker")

NODES_REFRESH_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 10.0
WARM_UP = "slipway.workers.ray_task.warm_up"
"""Run by Ray in each worker process it starts for this driver (imports, fork server)."""
FORWARDED_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN")
"""Variables of this process that user code on the cluster must see too (``slipway up``
points user code at its MLflow server, and gives it the token that server asks for with
auth on, this way)."""

_remote_item = ray.remote(max_retries=0)(run_item)


@dataclass(eq=False)
class RayRun:
    """One item's Ray task, and the CPUs it asked for."""

    item: WorkItem
    ref: ray.ObjectRef[Outcome]
    cpus: float


class RayExecutor:
    """Runs items as Ray tasks on the cluster at ``address`` (``None``: Ray on this
    machine), up to ``max_in_flight`` at once (``None``: the cluster's CPUs). One Ray
    connection serves the whole process, so a second executor in it shares the first
    one's cluster."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        address: str | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.address = address
        self.max_in_flight = max_in_flight
        self._capacity = 0
        self._settings_ref: ray.ObjectRef[Settings] | None = None
        self._connected_here = False
        self._largest_node = 0.0
        self._nodes_read = 0.0
        self._open_lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def kinds(self) -> Collection[str]:
        return KINDS

    def open(self) -> None:
        """Join the Ray cluster (or reuse this process's connection) and size the pool."""
        with self._open_lock:
            if self._settings_ref is None:
                self._connect()

    def _connect(self) -> None:
        if not ray.is_initialized():
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            options: dict[str, Any] = {
                "logging_level": logging.WARNING,
                "runtime_env": {"env_vars": env, "worker_process_setup_hook": WARM_UP},
            }
            if self.address is None:
                options["include_dashboard"] = False
            else:
                _check_reachable(self.address)
            try:
                ray.init(address=self.address, **options)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                where = self.address or "this machine"
                raise BackendUnavailable(f"cannot start or reach Ray at {where}: {exc}") from None
            self._connected_here = True
        cpus = int(ray.cluster_resources().get("CPU", 0))  # type: ignore[no-untyped-call]
        self._capacity = self.max_in_flight or max(1, cpus)
        self._settings_ref = ray.put(self.settings)
        log.info("on Ray (%d CPUs), up to %d items in flight", cpus, self._capacity)

    def submit(self, item: WorkItem, lease: Lease) -> RayRun:
        # The task reads its lease from the item's row (ray_task.RemoteLease): the
        # driver's ``lease`` cannot travel, only whose it is.
        assert self._settings_ref is not None, "open() first"
        cpus = self._cpus(item)
        ref = _remote_item.options(num_cpus=cpus, name=f"slipway {item.kind} {item.id}").remote(
            self._settings_ref, item, lease.holder
        )
        log.info("work item %d (%s) submitted to Ray, %g CPU(s)", item.id, item.kind, cpus)
        return RayRun(item, ref, cpus)

    def poll(self, run: RayRun) -> Outcome | None:
        ready, _ = ray.wait([run.ref], num_returns=1, timeout=0)
        if not ready:
            return None
        try:
            outcome: Outcome = ray.get(run.ref)
        except ray.exceptions.RayError as exc:
            # The task never reported: its worker process died (killed, out of memory,
            # node lost), it was cancelled, or Ray could not run it.
            error = f"the Ray task running this item failed: {type(exc).__name__}: {exc}"
            return Outcome(Ending.CRASHED, error=error, cpus=run.cpus)
        return replace(outcome, cpus=run.cpus)

    def wait(self, runs: Sequence[RayRun], timeout: float) -> None:
        ray.wait([r.ref for r in runs], num_returns=1, timeout=timeout)

    def cancel(self, run: RayRun) -> None:
        with contextlib.suppress(ray.exceptions.RayError, ValueError):
            ray.cancel(run.ref, force=True)

    def close(self) -> None:
        """Leave the cluster if this executor joined it; Ray ends the tasks it still ran."""
        if self._connected_here and ray.is_initialized():
            ray.shutdown()
        self._connected_here = False
        self._settings_ref = None

    def _cpus(self, item: WorkItem) -> float:
        wanted = declared_cpus(self.db, item) or 1.0
        now = time.monotonic()
        if now - self._nodes_read > NODES_REFRESH_SECONDS:
            self._nodes_read = now
            alive = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
            self._largest_node = max(
                (float(n.get("Resources", {}).get("CPU", 0)) for n in alive), default=0.0
            )
        if self._largest_node > 0:
            return min(wanted, self._largest_node)
        return wanted  # no CPUs yet: an autoscaler may add nodes


class RayWorker(WorkLoop[RayRun]):
    """A worker whose items run on Ray: the loop with a :class:`RayExecutor`.

    ``address`` overrides ``ray.address``; ``max_in_flight`` overrides
    ``workers.ray_max_in_flight``.
    """

    def __init__(
        self,
        services: Services,
        *,
        queues: Sequence[str],
        worker_id: str | None = None,
        address: str | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        settings = services.settings
        executor = RayExecutor(
            settings,
            services.db,
            address=address if address is not None else settings.ray.address,
            max_in_flight=max_in_flight or settings.workers.ray_max_in_flight,
        )
        super().__init__(
            services,
            executor,
            queues=queues,
            worker_id=worker_id or f"ray:{socket.gethostname()}:{os.getpid()}",
        )

    def warm_up(self) -> None:
        """Connect to the cluster now, so a bad address stops the worker at start."""
        self.connect()

    def connect(self) -> None:
        """Join the Ray cluster (or reuse this process's connection) and size the pool."""
        self.executor.open()

    def close(self) -> None:
        """Leave the cluster if this worker joined it."""
        self.executor.close()


def _check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens on: ``ray.init`` would retry it for
    minutes before giving up."""
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 0
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot reach the Ray cluster at {address} (ray.address): {exc}"
        ) from None
