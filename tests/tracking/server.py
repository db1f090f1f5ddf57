"""The tracking server as a real process, as the supervisor runs it, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from slipway.core.net import free_port
from slipway.core.settings import Settings
from slipway.tracking import config as tracking_config
from tests.waiting import eventually


class TrackingServer:
    """``python -m slipway.api.tracking`` (MLflow behind Slipway's gate) on a free port,
    with nothing of the test's own environment but what ``tracking_env`` sets."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "MLFLOW_"))}
        env |= tracking_config.tracking_env(settings)
        self.log = log
        self._out = log.open("ab")
        self.process = subprocess.Popen(
            tracking_config.server_argv("127.0.0.1", self.port),
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 120) -> None:
        def healthy() -> bool:
            assert self.process.poll() is None, f"server exited:\n{self.log.read_text()}"
            try:
                return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually(healthy, what=f"the tracking server at {self.url} answered", timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
