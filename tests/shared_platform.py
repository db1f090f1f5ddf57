"""A real platform shared by the tests that reach it from outside: ``slipway up`` as a
process (control plane with auth on, MLflow's server, the scheduler, two workers, the
gateway) on ports of its own, started once per test session (per xdist worker), and its
embedded twin — the same settings opened in process — so both faces act on one platform:
work queued from either side runs on ``slipway up``'s workers.

The fixture is registered in tests/conftest.py; tests/client's ``platform`` fixture runs a
test embedded and remote over it, tests/cli's remote tests run the CLI against it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from slipway.client import Client
from slipway.core.settings import Settings, load_settings
from slipway.services import Services
from tests.waiting import eventually


@dataclass
class SharedPlatform:
    """``slipway up`` running on ``home``, its embedded twin, and an admin's token."""

    url: str
    gateway_url: str
    tracking_url: str
    home: Path
    settings: Settings
    services: Services
    token: str
    process: subprocess.Popen[bytes]

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token=token or self.token)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, f"slipway up exited early ({process.returncode})"
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def shared_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
    home = tmp_path_factory.mktemp("shared") / "home"
    home.mkdir()
    port, tracking_port, gateway_port = _free_port(), _free_port(), _free_port()
    config = home / "slipway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"port": port, "auth": True},
                "tracking": {"port": tracking_port},
                "serving": {"port": gateway_port},
                # Alert tests deliver to a webhook receiver the test runs on loopback.
                "alerts": {"allowed_hosts": ["127.0.0.1"]},
                # Remote batch jobs and baselines name files in the tests' tmp folders.
                "data": {"allowed_roots": [str(tmp_path_factory.getbasetemp())]},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env |= {"SLIPWAY_HOME": str(home), "SLIPWAY_CONFIG": str(config)}
    # The embedded twin reads the same file, as a user's notebook on the server would.
    previous = {k: os.environ.get(k) for k in ("SLIPWAY_HOME", "SLIPWAY_CONFIG")}
    os.environ.update({"SLIPWAY_HOME": str(home), "SLIPWAY_CONFIG": str(config)})
    try:
        settings = load_settings()
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    services = Services.open(settings)
    token = services.tokens.create("shared-tests", "admin", created_by="tests")[1]
    log = (home / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "slipway", "up", "--workers", "2"],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: _answers(f"{url}/api/v1/health/live", process),
            what="slipway up's control plane answered",
            timeout=120,
        )
        # MLflow's server creates its tables on the shared database as it starts: until it
        # answers, the embedded twin opening MLflow's store would race it to create them.
        eventually(
            lambda: _answers(f"http://127.0.0.1:{tracking_port}/health", process),
            what="slipway up's MLflow server answered",
            timeout=180,
        )
        # The gateway starts last: a test invoking an endpoint before it listens would see
        # the connection refused, not the answer it asserts.
        eventually(
            lambda: _answers(f"http://127.0.0.1:{gateway_port}/ping", process),
            what="slipway up's gateway answered",
            timeout=120,
        )
        yield SharedPlatform(
            url=url,
            gateway_url=f"http://127.0.0.1:{gateway_port}",
            tracking_url=f"http://127.0.0.1:{tracking_port}",
            home=home,
            settings=settings,
            services=services,
            token=token,
            process=process,
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()
        services.close()
