"""A real Ray head on loopback for the Ray executor's tests, started once per session.

``ray start --head --block`` runs in a session of its own; stopping it is a SIGTERM to
that one process (Ray drains and stops what it started), then SIGKILL to whatever is
left in its process group — never Ray's machine-wide ``ray stop``, which would also stop
clusters that are not ours.

Ray turns 127.0.0.1 into the machine's routable address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set where Ray is imported, which keeps the head
and this test process (the driver) on loopback. Ray reads it at import, so it is set here,
before any test module imports Ray — as is what :mod:`slipway.workers.ray_executor` sets
before its own import of Ray (a test module may import Ray first).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] = "0"  # tests run under `uv run`
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# The head requires a token, as a production cluster should; this session's own, so a
# ~/.ray/auth_token left by some other Ray use on the machine changes nothing.
os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)

STARTED = "Ray runtime started"
_HEADS: dict[str, int] = {}
"""The pid of the ``ray start`` process behind each address ``ray_head`` yielded."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if os.getpgid(process.pid) == pgid:
                found.append(process)
    return found


@pytest.fixture(scope="session")
def ray_head() -> Iterator[str]:
    """The GCS address (``127.0.0.1:PORT``) of a two-CPU Ray head with a 200 MB object
    store, token authentication, no dashboard and no usage reporting."""
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # Short: Ray puts Unix sockets under it, and their paths may not exceed 107 bytes.
    temp = tempfile.mkdtemp(prefix="slwray-", dir="/tmp")
    port = _free_port()
    argv = [
        ray_cli,
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        "--num-cpus=2",
        f"--object-store-memory={200 * 1024 * 1024}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp}",
    ]
    env = dict(os.environ)
    log_path = Path(temp) / "head.log"
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while STARTED not in log_path.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        _HEADS[f"127.0.0.1:{port}"] = head.pid
        yield f"127.0.0.1:{port}"
    finally:
        import ray  # imported by the tests already; disconnect before the head goes

        if ray.is_initialized():
            ray.shutdown()
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        for process in _group(head.pid):
            with contextlib.suppress(psutil.Error):
                process.kill()
        shutil.rmtree(temp, ignore_errors=True)
        assert not _group(head.pid), "Ray processes outlived the head"


@pytest.fixture(scope="session")
def ray_head_process(ray_head: str) -> psutil.Process:
    """The ``ray start`` process of ``ray_head``: every process of that cluster (its
    raylet, its worker processes) descends from it, and no other cluster's does."""
    return psutil.Process(_HEADS[ray_head])
