"""Crash recovery with real worker processes: SIGKILL mid-step, then another worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from slipway.core.settings import load_settings
from slipway.services import Services
from tests.pipelines import sample
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    return env | {
        "SLIPWAY_HOME": str(home),
        "SLIPWAY_CONFIG": str(home / "none.yaml"),
        "SLIPWAY_WORKERS__LEASE_SECONDS": "2",
        "SLIPWAY_WORKERS__POLL_SECONDS": "0.1",
        "PYTHONPATH": str(REPO),
    }


@pytest.fixture
def services(home: Path) -> Iterator[Services]:
    opened = Services.open(load_settings(home=home))
    yield opened
    opened.close()


def _worker(home: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "slipway", "worker", "--id", name],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_killed_worker_step_is_retried_by_another(
    services: Services, home: Path, tmp_path: Path
) -> None:
    services.pipelines.register(sample.slow)
    marker = tmp_path / "pid"
    run = services.pipelines.start("slow", {"seconds": 3.0, "marker": str(marker)})
    doomed = _worker(home, "doomed")
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.1)
    step_pid = int(marker.read_text())
    assert psutil.pid_exists(step_pid)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    # The step's own process dies with its worker (parent-death signal).
    psutil.wait_procs([psutil.Process(step_pid)], timeout=10) if psutil.pid_exists(
        step_pid
    ) else None
    assert not psutil.pid_exists(step_pid) or psutil.Process(step_pid).status() == "zombie"
    marker.unlink()
    survivor = _worker(home, "survivor")
    try:
        done = services.pipelines.wait(run, timeout=90)
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=30)
    assert done.state == "Succeeded", done
    sleepy = next(s for s in done.steps if s.name == "sleepy")
    assert sleepy.attempts == 2
    assert sleepy.outputs["value"] == {"slept": 3}
    assert [s.state for s in done.steps] == ["Succeeded", "Succeeded"]
    objects = services.artifacts.list("pipelines/objects")
    assert len(objects) == len(set(objects)) == 2  # one object per output, none partial


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopped_worker_hands_its_step_back_at_once(
    services: Services, home: Path, tmp_path: Path, signum: int
) -> None:
    """A worker told to stop mid-step kills the step, gives the item back (no attempt
    counted, no lease left to expire), and exits with its children within seconds; the
    next worker runs the step once more and the execution succeeds with one output each."""
    services.pipelines.register(sample.slow)
    marker = tmp_path / "pid"
    run = services.pipelines.start("slow", {"seconds": 4.0, "marker": str(marker)})
    leaving = _worker(home, "leaving")
    eventually(marker.exists, what="the step started", timeout=60)
    step_pid = int(marker.read_text())
    marker.unlink()
    family = [psutil.Process(leaving.pid), *psutil.Process(leaving.pid).children(recursive=True)]
    stopped_at = time.monotonic()
    leaving.send_signal(signum)
    assert leaving.wait(timeout=30) == 0
    _, alive = psutil.wait_procs(family, timeout=10)
    took = time.monotonic() - stopped_at
    assert alive == [] and not _running(step_pid), alive
    # Handed back, not waited for: the item and the step's second run below say so; the
    # bound only catches a hang (wall-clock speed on a loaded machine is no test's).
    assert took < 30, f"stopping took {took:.1f} s"
    [item] = [
        i
        for i in services.queue.list(queue="pipelines")
        if i.kind == "pipeline.step" and i.payload["step"] == "sleepy"
    ]
    assert item.state == "queued" and item.attempts == 0 and item.lease_owner is None
    assert "released by leaving" in (item.last_error or "")
    step = next(s for s in services.pipelines.describe(run).steps if s.name == "sleepy")
    assert step.state != "Cancelled"  # handed back, not cancelled

    # The next worker takes it at once (no lease to wait out) and runs it once more.
    survivor = _worker(home, "survivor")
    try:
        done = services.pipelines.wait(run, timeout=90)
    finally:
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=30) == 0
    assert done.state == "Succeeded", done
    sleepy = next(s for s in done.steps if s.name == "sleepy")
    assert sleepy.attempts == 1  # the interrupted attempt was given back, not spent
    assert sleepy.outputs["value"] == {"slept": 4}
    objects = services.artifacts.list("pipelines/objects")
    assert len(objects) == len(set(objects)) == 2  # one object per output, none partial


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server(home: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "slipway", "server", "--port", str(port)],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _get(url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.2)


@pytest.mark.slow
def test_control_plane_restart_loses_no_execution(
    services: Services, home: Path, tmp_path: Path
) -> None:
    services.pipelines.register(sample.slow)
    port = _free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    server = _server(home, port)
    worker = _worker(home, "steady")
    try:
        _get(f"{base}/health/live")
        marker = tmp_path / "pid"
        started = httpx.post(
            f"{base}/pipelines/slow/executions",
            json={"parameters": {"seconds": 2.0, "marker": str(marker)}},
        )
        assert started.status_code == 201
        run = started.json()["id"]
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        server = _server(home, port)
        deadline = time.monotonic() + 90
        while True:
            described = _get(f"{base}/executions/{run}").json()
            if described["state"] in ("Succeeded", "Failed", "Cancelled"):
                break
            assert time.monotonic() < deadline, described
            time.sleep(0.3)
        assert described["state"] == "Succeeded", described
        logs = httpx.get(f"{base}/executions/{run}/logs").json()
        assert isinstance(logs, list)
    finally:
        for process in (server, worker):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
