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


# How long ``slipway up`` gets to bring every process up: on CI's two cores, with other
# platforms starting beside it, MLflow's server and the gateway's workers can take minutes.
START_TIMEOUT = 600


def _log_tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def start_up(home: Path, env: dict[str, str], checks: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``slipway up`` on ``home`` and wait until each of ``checks`` (what -> URL)
    answers 200, in order. A failed start fails with the tail of its log (up.log in
    ``home``), which says why; :func:`stop_up` stops a started one."""
    with (home / "up.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "slipway", "up", "--start-timeout", str(START_TIMEOUT)],
            env=env,
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for what, url in checks.items():
            eventually(
                lambda url=url: _answers(url, process),  # type: ignore[misc]
                what=f"slipway up's {what} answered",
                timeout=START_TIMEOUT,
            )
    except AssertionError as exc:
        stop_up(process)
        tail = _log_tail(home / "up.log")
        raise AssertionError(f"{exc}\n--- {home / 'up.log'} ---\n{tail}") from None
    return process


def stop_up(process: subprocess.Popen[bytes]) -> None:
    """Stop ``slipway up`` as Ctrl-C does; kill its process group if it does not stop."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


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
    url = f"http://127.0.0.1:{port}"
    # MLflow's server creates its tables on the shared database as it starts: until it
    # answers, the embedded twin opening MLflow's store would race it to create them. The
    # gateway starts last: a test invoking an endpoint before it listens would see the
    # connection refused, not the answer it asserts.
    process = start_up(
        home,
        env,
        {
            "control plane": f"{url}/api/v1/health/live",
            "MLflow server": f"http://127.0.0.1:{tracking_port}/health",
            "gateway": f"http://127.0.0.1:{gateway_port}/ping",
        },
    )
    try:
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
        stop_up(process)
        services.close()
