"""Private PostgreSQL and Redis servers a test may stop and start again.

The shared services of ``scripts/services`` serve every test of the run (two xdist
workers), so a test that restarts a backing service needs its own: these start one on a
free loopback port in a fresh temporary directory, stop it, start it again on the same
port with the same data, and remove everything afterwards (use them as context managers).
Kafka's counterpart is :class:`tests.batch.broker.Broker`.

PostgreSQL refuses to run as root, so as root (how the suite runs in CI) its programs run
as the ``postgres`` user, as ``scripts/services`` does; the data directory is then made
in ``/tmp`` (not under pytest's ``tmp_path``, whose parent only root may enter) and given
to that user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

from tests.waiting import eventually

PG_OS_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(ready: Callable[[], bool], what: str, timeout: float, log: Path) -> None:
    """Wait until ``ready()``; fail naming ``what`` and the tail of the server's log."""
    try:
        eventually(ready, what=f"{what} ready", timeout=timeout, interval=0.05)
    except AssertionError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{exc}; log {log}:\n{tail}") from None


def _pg_bin() -> Path:
    found = sorted(
        Path(p).parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")
        if (Path(p).parent / "initdb").exists()
    )
    if not found:
        raise RuntimeError("no PostgreSQL in /usr/lib/postgresql/*/bin: run scripts/services")
    return found[-1]


class PrivatePostgres:
    """One PostgreSQL cluster of its own, with database ``slipway``; see the module."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="slipway-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, PG_OS_USER, PG_OS_USER)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E",
                  "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            # The server process dies, not the machine: what it wrote is in the operating
            # system's cache and survives, so fsync is not needed to keep every commit
            # (and without it MLflow's schema migrations take seconds, not a minute).
            conf.write(
                "\nlisten_addresses = '127.0.0.1'\nmax_connections = 100\n"
                "shared_buffers = 16MB\nfsync = off\nfull_page_writes = off\n"
            )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/slipway"

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        command = [str(self.bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", PG_OS_USER, "--", *command]
        return subprocess.run(command, cwd="/", check=True, capture_output=True, timeout=120)

    def ready(self) -> bool:
        """The server accepts connections (``pg_isready``)."""
        probe = subprocess.run(
            [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            check=False,
            timeout=10,
        )
        return probe.returncode == 0

    def start(self) -> None:
        """Start on this cluster's port (the same one on every start) and wait until it
        accepts connections; the first start also creates the database."""
        first = not (self.data / "postmaster.opts").exists()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.root}", "start")  # fmt: skip
        _wait(self.ready, "private PostgreSQL", 60, self.log)
        if first:
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                      "slipway")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` drops every connection at once, with no clean
        shutdown (the next start runs crash recovery), as when a server dies."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


class PrivateRedis:
    """One redis-server of its own (a child process in its own session); see the module.

    It keeps an append-only file fsynced on every write, so a write Redis acknowledged
    survives the server being killed: the configuration production needs for "no accepted
    write is lost" (without it a restarted Redis comes back empty, and only
    ``materialize`` from the offline store would bring the records back)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="slipway-chaos-redis-"))
        self.log = self.root / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ready(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        """Start on this server's port (the same on every start) with the data it had."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.root),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--protected-mode",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(self.ready, "private Redis", 30, self.log)

    def stop(self) -> None:
        """Kill the server (SIGKILL: no shutdown, no final save), as when it dies."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()
