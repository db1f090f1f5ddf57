"""The platform the demo runs on, in one process: the services on embedded defaults, a pool
of worker threads (each step, job and trial still runs in a process of its own), the
scheduler loop (schedules, triggers, deployments, monitors, alerts), the gateway on a
loopback port, and a webhook receiver standing in for the team's chat."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn

from slipway.core.net import free_port
from slipway.core.settings import load_settings
from slipway.services import Services, open_gateway
from slipway.serving.gateway.app import Gateway
from slipway.workers.handlers import DEFAULT_QUEUES
from slipway.workers.scheduler import run_scheduler
from slipway.workers.worker import Worker

log = logging.getLogger("slipway.demo")


@dataclass
class Receiver:
    """A local webhook endpoint that keeps what it is sent."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


def _receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hooks/ops")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            with suppress(ValueError):
                receiver.received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-receiver").start()
    return receiver, server


@dataclass
class DemoPlatform:
    services: Services
    gateway_url: str
    receiver: Receiver
    gateway: Gateway


@contextmanager
def running(home: Path, *, workers: int = 4) -> Iterator[DemoPlatform]:
    """Start everything on ``home``; stop it all on exit."""
    os.environ["SLIPWAY_HOME"] = str(home)
    # The receiver is on loopback: the operator (the demo) allows it explicitly.
    os.environ["SLIPWAY_ALERTS__ALLOWED_HOSTS"] = "127.0.0.1"
    os.environ.setdefault("SLIPWAY_WORKERS__POLL_SECONDS", "0.2")
    # Steps and trials log models through MLflow, which narrates every environment export.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    settings = load_settings()
    services = Services.open(settings)
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    stop = threading.Event()
    pool = [
        Worker(services, queues=DEFAULT_QUEUES, worker_id=f"demo-worker-{n}")
        for n in range(workers)
    ]
    threads = [threading.Thread(target=w.run, daemon=True, name=w.worker_id) for w in pool]
    threads.append(
        threading.Thread(
            target=run_scheduler, args=(services, stop), kwargs={"interval": 0.5}, daemon=True
        )
    )
    receiver, receiver_server = _receiver()
    gateway = open_gateway(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            gateway, host="127.0.0.1", port=port, lifespan="on", log_level="warning", loop="asyncio"
        )
    )
    threads.append(threading.Thread(target=server.run, daemon=True, name="demo-gateway"))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield DemoPlatform(services, f"http://127.0.0.1:{port}", receiver, gateway)
    finally:
        stop.set()
        for worker in pool:
            worker.stopping.set()
        server.should_exit = True
        receiver_server.shutdown()
        for thread in threads:
            thread.join(timeout=30)
        services.close()
