"""The Ray executor: a worker that runs the items it claims as tasks on a Ray cluster.

It claims from the same queues, with the same leases, as a local
:class:`~slipway.workers.worker.Worker`, but keeps up to ``max_in_flight`` items running at
once, each as a Ray task (:func:`slipway.workers.ray_task.run_item`) that calls the same
handler in a Ray worker process. This process (Ray's "driver") owns every lease:

- it heartbeats every item in flight; a lease that is lost (the item was cancelled, or it
  expired and someone else claimed it) gets its task force-cancelled
  (``ray.cancel(force=True)``) and its result discarded;
- it records each outcome: the handler's result, the user's traceback (retried with
  backoff while attempts remain), a ``PermanentFailure`` (not retried), or the task's
  worker process dying (retried: the queue, not Ray, decides — tasks are submitted with
  ``max_retries=0`` so a crash is counted as an attempt like a local worker's crash);
- it asks Ray for the CPUs the step, job or trial declared (``cpus``, default 1), capped
  at the largest node, so Ray places work by resources and never waits forever for a
  node that does not exist — as locally, ``cpus`` means "at most this many cores".

SIGTERM and SIGINT stop claiming; the items in flight are finished first.

Work reaches the cluster as Ray transports it between Slipway's own processes (the
settings and the claimed item); nothing a request sent is unpickled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

# Ray reads these when it is imported or initialised. A driver run under `uv run` would
# have Ray rebuild the project's environment for its workers (Ray's uv hook) instead of
# using the Slipway installed on the cluster; and a self-hosted platform phones nobody.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
import ray.exceptions

from slipway.core.errors import BackendUnavailable, LeaseLost
from slipway.core.queue import WorkItem
from slipway.core.settings import Settings
from slipway.services import Services
from slipway.workers.handlers import KINDS
from slipway.workers.ray_task import TaskOutcome, run_item
from slipway.workers.resources import declared_cpus

log = logging.getLogger("slipway.worker")

NODES_REFRESH_SECONDS = 60.0
HISTORY = 1000
CONNECT_TIMEOUT_SECONDS = 10.0
WARM_UP = "slipway.workers.ray_task.warm_up"
"""Run by Ray in each worker process it starts for this driver (imports, fork server)."""
FORWARDED_ENV = ("MLFLOW_TRACKING_URI",)
"""Variables of this process that user code on the cluster must see too (``slipway up``
points user code at its MLflow server this way)."""

_remote_item = ray.remote(max_retries=0)(run_item)


@dataclass
class _Flight:
    item: WorkItem
    ref: ray.ObjectRef[TaskOutcome]
    cpus: float
    lost: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Finished:
    """How an item in flight ended, for logs and inspection: ``succeeded``, ``failed``
    (the handler's error), ``crashed`` (the task's process died or Ray could not run it),
    ``cancelled`` (lease lost while running: task cancelled) or ``discarded`` (lease lost
    just as it finished). ``pid`` is the Ray worker process's, when the task reported."""

    item_id: int
    kind: str
    cpus: float
    state: str
    pid: int | None = None


class RayWorker:
    """Claims work like :class:`~slipway.workers.worker.Worker` and runs it on Ray.

    ``address`` overrides ``ray.address`` (``None`` there: Ray on this machine);
    ``max_in_flight`` overrides ``workers.ray_max_in_flight`` (``None``: the cluster's
    CPUs). One Ray connection serves the whole process, so a second ``RayWorker`` in it
    shares the first one's cluster.
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
        self.services = services
        self.queues = list(queues)
        self.worker_id = worker_id or f"ray:{socket.gethostname()}:{os.getpid()}"
        settings = services.settings
        self.address = address if address is not None else settings.ray.address
        self.max_in_flight = max_in_flight or settings.workers.ray_max_in_flight
        self.lease_seconds = settings.workers.lease_seconds
        self.poll_seconds = settings.workers.poll_seconds
        self.stopping = threading.Event()
        self.capacity = 0
        self.finished: deque[Finished] = deque(maxlen=HISTORY)
        """The last items this worker had in flight, oldest first."""
        self._flights: dict[ray.ObjectRef[TaskOutcome], _Flight] = {}
        self._lock = threading.Lock()
        self._settings_ref: ray.ObjectRef[Settings] | None = None
        self._connected_here = False
        self._largest_node = 0.0
        self._nodes_read = 0.0

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("worker %s: signal %d, finishing items in flight", self.worker_id, signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def warm_up(self) -> None:
        """Connect to the cluster now, so a bad address stops the worker at start."""
        self.connect()

    def connect(self) -> None:
        """Join the Ray cluster (or reuse this process's connection) and size the pool."""
        if self._settings_ref is not None:
            return
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
        self.capacity = self.max_in_flight or max(1, cpus)
        self._settings_ref = ray.put(self.services.settings)
        log.info(
            "worker %s: on Ray (%d CPUs), up to %d items in flight",
            self.worker_id,
            cpus,
            self.capacity,
        )

    def close(self) -> None:
        """Leave the cluster if this worker joined it; Ray ends the tasks it still ran."""
        if self._connected_here and ray.is_initialized():
            ray.shutdown()
        self._connected_here = False
        self._settings_ref = None

    def run(self, *, max_items: int | None = None) -> int:
        """Work until stopped (or ``max_items`` are claimed and finished); returns how many
        items were claimed."""
        self.connect()
        claimed = 0
        done = threading.Event()
        ticker = threading.Thread(target=self._heartbeat_loop, args=(done,), daemon=True)
        ticker.start()
        try:
            while True:
                self._cancel_lost()
                while (
                    not self.stopping.is_set()
                    and len(self._flights) < self.capacity
                    and (max_items is None or claimed < max_items)
                ):
                    item = self.services.queue.claim(
                        self.queues, self.worker_id, lease_seconds=self.lease_seconds
                    )
                    if item is None:
                        break
                    claimed += 1
                    self._submit(item)
                if not self._flights:
                    if self.stopping.is_set() or (max_items is not None and claimed >= max_items):
                        return claimed
                    self.stopping.wait(self.poll_seconds)
                    continue
                ready, _ = ray.wait(list(self._flights), num_returns=1, timeout=self.poll_seconds)
                for ref in ready:
                    self._finish(ref)
        finally:
            done.set()
            ticker.join()

    def _submit(self, item: WorkItem) -> None:
        queue = self.services.queue
        if item.kind not in KINDS:
            error = f"no handler for kind {item.kind!r}"
            self._settle(lambda: queue.fail(item.id, self.worker_id, error, retry=False))
            return
        assert self._settings_ref is not None, "connect() first"
        cpus = self._cpus(item)
        ref = _remote_item.options(num_cpus=cpus, name=f"slipway {item.kind} {item.id}").remote(
            self._settings_ref, item, self.worker_id
        )
        with self._lock:
            self._flights[ref] = _Flight(item, ref, cpus)
        log.info("work item %d (%s) submitted to Ray, %g CPU(s)", item.id, item.kind, cpus)

    def _cpus(self, item: WorkItem) -> float:
        wanted = declared_cpus(self.services.db, item) or 1.0
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

    def _heartbeat_loop(self, done: threading.Event) -> None:
        queue = self.services.queue
        while not done.wait(self.lease_seconds / 3):
            with self._lock:
                flights = [f for f in self._flights.values() if not f.lost.is_set()]
            for flight in flights:
                try:
                    queue.heartbeat(
                        flight.item.id, self.worker_id, lease_seconds=self.lease_seconds
                    )
                except LeaseLost:
                    flight.lost.set()
                except Exception as exc:  # the database hiccuped: the next beat tries again
                    log.warning("worker %s: heartbeat failed: %s", self.worker_id, exc)

    def _cancel_lost(self) -> None:
        with self._lock:
            lost = [f for f in self._flights.values() if f.lost.is_set()]
            for flight in lost:
                del self._flights[flight.ref]
        for flight in lost:
            with contextlib.suppress(ray.exceptions.RayError, ValueError):
                ray.cancel(flight.ref, force=True)
            self._record(flight, "cancelled")
            log.warning(
                "work item %d (%s): lease lost; its Ray task is cancelled and its result discarded",
                flight.item.id,
                flight.item.kind,
            )

    def _finish(self, ref: ray.ObjectRef[TaskOutcome]) -> None:
        with self._lock:
            flight = self._flights.pop(ref, None)
        if flight is None:
            return
        item, queue = flight.item, self.services.queue
        if flight.lost.is_set():
            self._record(flight, "discarded")
            log.warning("work item %d: lease lost; result discarded", item.id)
            return
        try:
            outcome: TaskOutcome = ray.get(ref)
        except ray.exceptions.RayError as exc:
            # The task never reported: its worker process died (killed, out of memory,
            # node lost) or Ray could not run it. Like a crashed local worker: retried.
            error = f"the Ray task running this item failed: {type(exc).__name__}: {exc}"
            self._settle(lambda: queue.fail(item.id, self.worker_id, error, retry=True))
            self._record(flight, "crashed")
            log.warning("work item %d (%s) failed:\n%s", item.id, item.kind, error)
            return
        if outcome.ok:
            self._settle(lambda: queue.complete(item.id, self.worker_id, outcome.result))
            self._record(flight, "succeeded", outcome.pid)
            return
        error = outcome.error or "failed"
        self._settle(lambda: queue.fail(item.id, self.worker_id, error, retry=outcome.retry))
        self._record(flight, "failed", outcome.pid)
        log.warning("work item %d (%s) failed:\n%s", item.id, item.kind, error)

    def _record(self, flight: _Flight, state: str, pid: int | None = None) -> None:
        item = flight.item
        self.finished.append(Finished(item.id, item.kind, flight.cpus, state, pid))

    def _settle(self, action: Callable[[], object]) -> None:
        try:
            action()
        except LeaseLost as exc:
            log.warning("worker %s: %s; result discarded", self.worker_id, exc.message)


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
