"""Running user code in a child process: memory cap, timeout, stop on request, logs.

Shared by pipeline steps and training jobs. The child gets its own process group (a
timeout or a stop kills everything it started) and a parent-death signal (a worker killed
with SIGKILL takes its child along). Its stdout and stderr are merged and handed, in
chunks, to a sink — the database log table — every half second.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from slipway.runtime.supervisor import die_with_parent

FLUSH_SECONDS = 0.5
STOP_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ChildResult:
    returncode: int | None
    stopped: str | None  # "stopped" or "timed out after N s" when it was killed


def _limits(memory_mb: int | None) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()
        die_with_parent()
        if memory_mb:
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


class _Pump:
    def __init__(self, stream: IO[str], sink: Callable[[str], None]) -> None:
        self.stream = stream
        self.sink = sink
        self.buffer: list[str] = []
        self.lock = threading.Lock()
        self.last = time.monotonic()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in iter(self.stream.readline, ""):
            with self.lock:
                self.buffer.append(line)

    def flush(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.last < FLUSH_SECONDS:
            return
        self.last = time.monotonic()
        with self.lock:
            text, self.buffer = "".join(self.buffer), []
        if text:
            self.sink(text)

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.flush(force=True)
        self.stream.close()


def run_child(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    log: Callable[[str], None],
    cwd: str | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ChildResult:
    """Run ``argv`` to completion (or until stopped / timed out), streaming its output."""
    child = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=cwd,
        preexec_fn=_limits(memory_mb),
    )
    assert child.stdout is not None
    pump = _Pump(child.stdout, log)
    started = last_check = time.monotonic()
    stopped: str | None = None
    while True:
        try:
            child.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        pump.flush()
        now = time.monotonic()
        if now - last_check >= STOP_CHECK_SECONDS:
            last_check = now
            if should_stop():
                stopped = "stopped"
        if timeout and now - started > timeout:
            stopped = f"timed out after {timeout:g} s"
        if stopped:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            break
    pump.close()
    return ChildResult(child.returncode, stopped)
