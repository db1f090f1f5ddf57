"""``slipway serve``: N gateway worker processes serving one port.

The master reserves the port and starts the workers; each worker listens on its own
``SO_REUSEPORT`` socket, so the kernel spreads connections evenly between them. The master
replaces a worker that dies — a SIGKILLed worker's clients see their connection close,
never a hang — and scales between the minimum and maximum worker count with the in-flight
load the workers report in their heartbeats.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput
from slipway.core.net import listening_socket
from slipway.core.settings import LOOPBACK_HOSTS, Settings
from slipway.runtime.supervisor import die_with_parent
from slipway.serving.tables import GatewayRow

if TYPE_CHECKING:
    from slipway.serving.gateway.app import Gateway

log = logging.getLogger("slipway.serving.gateway")

# A worker process's entry: it assembles the platform from the settings this master
# passes in its environment (a module above the capabilities, so named, not imported).
WORKER_MODULE = "slipway.gateway_worker"
SCALE_DOWN_IN_FLIGHT = 0.5  # average in-flight requests per worker below which it is idle


def reserve(host: str, port: int) -> socket.socket:
    """The master's hold on ``host:port``: bound with ``SO_REUSEPORT`` but never listening,
    so the port is checked free up front and stays ours while workers come and go, and the
    kernel hands connections only to the workers' own listening sockets."""
    return listening_socket(host, port, reuse_port=True)


def worker_socket(host: str, port: int) -> socket.socket:
    """A worker's socket on the shared port, bound but not yet listening. Each worker has
    its own, so the kernel balances connections across workers (one shared socket lets
    whichever worker wakes first take most keep-alive connections and leaves the others
    idle). It listens only once the worker has loaded its endpoints (gateway/http.py
    ``serve``): a listening socket joins the port's group at once, and a replacement
    worker still loading its models would hold the connections the kernel hands it."""
    sock = listening_socket(host, port, reuse_port=True)
    sock.setblocking(False)
    return sock


def check_bind(host: str, *, auth: bool) -> None:
    """Refuse to serve beyond this machine without authentication (``server.auth``)."""
    if host not in LOOPBACK_HOSTS and not auth:
        raise InvalidInput(
            f"refusing to serve endpoints on {host} without authentication: anyone who can"
            " reach it could call every endpoint. Enable auth (SLIPWAY_SERVER__AUTH=true,"
            " then grant tokens `--invoke` on endpoints) or bind to 127.0.0.1.",
            field="serving.host",
        )


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    started: float


class GatewayMaster:
    def __init__(
        self,
        settings: Settings,
        sock: socket.socket,
        *,
        workers: int,
        max_workers: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.sock = sock
        self.min_workers = workers
        self.max_workers = max(workers, max_workers)
        # Workers are the parallelism: each gets its share of the cores for OpenMP, or
        # scikit-learn's and LightGBM's thread pools (one per process, each as wide as the
        # machine) spin against each other and a one-row prediction takes milliseconds.
        threads = str(max(1, (os.cpu_count() or 1) // self.max_workers))
        self.env = {"OMP_NUM_THREADS": threads} | os.environ | settings.as_env() | (env or {})
        self.workers: list[_Worker] = []
        self.restarts = 0
        self._stopping = False
        self._low_since: float | None = None
        self._high_ticks = 0
        self.db = Database(settings.database_url, pool_size=1)

    def _spawn(self) -> None:
        host, port = self.sock.getsockname()[:2]
        argv = [sys.executable, "-m", WORKER_MODULE, "--host", host, "--port", str(port)]
        process = subprocess.Popen(argv, env=self.env, preexec_fn=die_with_parent)
        self.workers.append(_Worker(process, time.monotonic()))
        log.info("gateway worker %s started", process.pid)

    def start(self) -> None:
        for _ in range(self.min_workers):
            self._spawn()

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def watch(self, poll: float = 0.25) -> None:
        last_scale = time.monotonic()
        while not self._stopping:
            for worker in list(self.workers):
                code = worker.process.poll()
                if code is not None:
                    self.workers.remove(worker)
                    if worker.process.returncode != -signal.SIGTERM or not self._stopping:
                        log.warning(
                            "gateway worker %s exited with %s; starting a new one",
                            worker.process.pid,
                            code,
                        )
                        self.restarts += 1
            while len(self.workers) < self.min_workers and not self._stopping:
                self._spawn()
            if time.monotonic() - last_scale >= 2.0:
                last_scale = time.monotonic()
                try:
                    self._scale()
                except Exception:
                    log.exception("gateway: scaling check failed")
            time.sleep(poll)
        self.stop()

    def _scale(self) -> None:
        pids = {w.process.pid for w in self.workers}
        with self.db.session() as session:
            loads = [
                row.in_flight
                for row in session.scalars(select(GatewayRow).where(GatewayRow.pid.in_(pids)))
            ]
        if not loads:
            return
        average = sum(loads) / len(self.workers)
        serving = self.settings.serving
        if average >= serving.scale_up_in_flight and len(self.workers) < self.max_workers:
            self._high_ticks += 1
            if self._high_ticks >= 2:
                self._high_ticks = 0
                log.info("gateway: %.1f in flight per worker; adding one", average)
                self._spawn()
            return
        self._high_ticks = 0
        if average <= SCALE_DOWN_IN_FLIGHT and len(self.workers) > self.min_workers:
            now = time.monotonic()
            self._low_since = self._low_since or now
            if now - self._low_since >= serving.scale_down_after_seconds:
                self._low_since = None
                newest = max(self.workers, key=lambda w: w.started)
                self.workers.remove(newest)
                log.info("gateway: idle; retiring worker %s", newest.process.pid)
                newest.process.terminate()
        else:
            self._low_since = None

    def stop(self, grace: float = 15.0) -> None:
        self._stopping = True
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        deadline = time.monotonic() + grace
        for worker in self.workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
        self.workers.clear()
        self.sock.close()
        self.db.dispose()


def run_worker(gateway: Gateway, host: str, port: int) -> None:
    """A worker: the gateway's HTTP server on its own socket on the port, on uvloop, until
    SIGTERM (then requests in flight finish). The process's entry (``slipway.gateway_worker``)
    assembles ``gateway`` from the platform's settings."""
    import asyncio

    import uvloop

    from slipway.serving.gateway import http

    sock = worker_socket(host, port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await http.serve(gateway, sock, stop)

    uvloop.run(main())


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int,
    max_workers: int,
    on_ready: Sequence[str] = (),
) -> int:
    check_bind(host, auth=settings.server.auth)
    sock = reserve(host, port)
    master = GatewayMaster(settings, sock, workers=workers, max_workers=max_workers)
    signal.signal(signal.SIGTERM, master.request_stop)
    signal.signal(signal.SIGINT, master.request_stop)
    master.start()
    master.watch()
    return 0
