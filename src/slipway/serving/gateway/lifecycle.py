"""A gateway worker's life: registering it, its two background threads, and its shutdown.

Nothing here runs on a request's path. The *watch* thread reloads endpoint configs from the
metadata database every ``POLL_SECONDS`` (a worker keeps serving what it holds if the
database is unreachable); the *housekeeping* thread, every second, reports tripped
deployment alarms, writes capture and metric buffers, beats the worker's heartbeat row
(the deployment controller reads it to know which workers are live and what they applied)
and unloads idle serverless models. A failing step is logged and tried again on the next
round, never ending the thread.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import socket
import threading
import uuid

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import BackendUnavailable
from slipway.features.online.base import OnlineStore
from slipway.serving.gateway.asgi import Receive, Send
from slipway.serving.gateway.capture import CaptureWriter
from slipway.serving.gateway.denials import Denials
from slipway.serving.gateway.metrics import Recorder
from slipway.serving.gateway.routing import Router
from slipway.serving.gateway.runtime import POLL_SECONDS, GatewayState
from slipway.serving.tables import GatewayRow

log = logging.getLogger("slipway.serving.gateway")


def gateway_id() -> str:
    """A worker's id, unique across hosts and restarts: host, pid and a random suffix."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:80]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Lifecycle:
    """Starts and stops one gateway worker and runs its background threads."""

    def __init__(
        self,
        gateway_id_: str,
        db: Database,
        state: GatewayState,
        router: Router,
        recorder: Recorder,
        capture: CaptureWriter,
        online: OnlineStore,
        denials: Denials,
    ) -> None:
        self.id = gateway_id_
        self.db = db
        self.state = state
        self.router = router
        self.recorder = recorder
        self.capture = capture
        self.online = online
        self.denials = denials
        self.started = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Register the worker, load its endpoints and start its threads (blocking)."""
        now = utcnow()
        with self.db.write() as session:
            session.merge(
                GatewayRow(
                    gateway_id=self.id,
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                    refreshed_at=now,
                    in_flight=0,
                )
            )
        self.state.refresh()
        self._beat()
        # Everything loaded so far (libraries, models) lives as long as the worker: keep it
        # out of the garbage collector's full passes, which otherwise stall requests.
        gc.freeze()
        for target, name in ((self._watch, "gateway-watch"), (self._housekeep, "gateway-flush")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.started = True

    def stop(self) -> None:
        """Stop the threads, write what is buffered, deregister and close (blocking)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        try:
            self.capture.flush()
            self.recorder.flush()
            self.denials.flush()
            with self.db.write() as session:
                row = session.get(GatewayRow, self.id)
                if row is not None:
                    session.delete(row)
            for name in list(self.state.endpoints):
                self.state._forget(name)
        except Exception as exc:  # shutting down: say it in a line, not a traceback
            log.warning("gateway shutdown: final flush failed: %s", exc)
        self.online.close()
        self.db.dispose()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI's lifespan protocol: :meth:`start` and :meth:`stop` off the event loop."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if not self.started:
                        await asyncio.get_running_loop().run_in_executor(None, self.start)
                    await send({"type": "lifespan.startup.complete"})
                except Exception as exc:
                    log.exception("gateway startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                if self.state.refresh():
                    gc.freeze()  # newly loaded models, too
            except BackendUnavailable as exc:  # serving goes on with what it holds
                log.warning("gateway: endpoints not refreshed: %s", exc.message)
            except Exception:
                log.exception("gateway: refreshing endpoints failed")

    def _housekeep(self) -> None:
        while not self._stop.wait(1.0):
            steps = (
                self.state.report_trips,
                self.capture.flush,
                self.recorder.flush,
                self.denials.flush,
                self._beat,
                self._unload,
            )
            for step in steps:
                try:
                    step()
                except BackendUnavailable as exc:  # tried again on the next round
                    log.warning("gateway housekeeping step %s: %s", step.__name__, exc.message)
                except Exception:
                    log.exception("gateway housekeeping step %s failed", step.__name__)

    def _beat(self) -> None:
        with self.db.write() as session:
            row = session.get(GatewayRow, self.id)
            if row is None:
                return
            row.heartbeat_at = utcnow()
            row.refreshed_at = self.state.refreshed_at
            row.in_flight = self.router.in_flight

    def _unload(self) -> None:
        for name in self.state.unload_idle():
            log.info("serverless: unloaded %s after its idle timeout", name)
