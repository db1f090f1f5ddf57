"""Running user code in a child process: memory and CPU caps, timeout, stop, logs.

Shared by pipeline steps and training jobs. The child gets its own process group (a
timeout or a stop kills everything it started) and a parent-death signal (a worker killed
with SIGKILL takes its child along). Its stdout and stderr are merged and handed, in
chunks, to a sink — the database log table — every half second.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import multiprocessing.context
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from slipway.runtime.limits import apply_in_child, resize_loaded_pools, thread_env
from slipway.runtime.supervisor import die_with_parent

FLUSH_SECONDS = 0.5
STOP_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ChildResult:
    returncode: int | None
    stopped: str | None  # "stopped" or "timed out after N s" when it was killed


def _limits(memory_mb: int | None, cpus: float | None) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()
        die_with_parent()
        apply_in_child(memory_mb=memory_mb, cpus=cpus)

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
    cpus: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ChildResult:
    """Run ``argv`` to completion (or until stopped / timed out), streaming its output;
    ``memory_mb`` and ``cpus`` cap it (see :mod:`slipway.runtime.limits`)."""
    child = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env | thread_env(cpus),
        cwd=cwd,
        preexec_fn=_limits(memory_mb, cpus),
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


# -- children forked from a warm server --------------------------------------------------

# Modules the fork server imports once, so a step or trial starts in milliseconds instead
# of paying for pandas, pyarrow, MLflow and Optuna imports in every fresh interpreter.
PRELOAD = [
    "slipway.runtime.forkserver_guard",  # first: the fork server dies with its worker
    "slipway.pipelines.runner",
    "slipway.tuning.trial",
    "pandas",
    "pyarrow",
    "mlflow",
    "optuna",
    "sklearn",
]
_context: multiprocessing.context.ForkServerContext | None = None


def _forkserver() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        # Each child re-runs the parent's main script first (multiprocessing's rule). In a
        # Ray worker that is Ray's default_worker.py, which imports Ray: preloaded, that
        # costs a child milliseconds instead of half a second.
        extra = ["ray"] if "ray" in sys.modules else []
        context.set_forkserver_preload(PRELOAD + extra)
        _context = context
    return _context


# Linux ties a parent-death signal to the *thread* that forked, not to the process: the
# fork server (armed by ``forkserver_guard``) is SIGKILLed when the thread that started it
# exits. Started from a step's or a test's short-lived thread, it died under the next
# fork request ("EOFError: unexpected EOF"). One thread that lives as long as the process
# starts (and, if it ever died, restarts) it instead — one per process: a forked child
# does not inherit the thread, so it makes its own.
_starter: tuple[int, ThreadPoolExecutor] | None = None
_starter_lock = threading.Lock()


def _ensure_fork_server() -> None:
    import multiprocessing.forkserver

    global _starter
    _forkserver()
    with _starter_lock:
        if _starter is None or _starter[0] != os.getpid():
            _starter = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="slipway-forkserver"))
        executor = _starter[1]
    executor.submit(multiprocessing.forkserver.ensure_running).result()


def start_fork_server() -> None:
    """Start the fork server now (it imports :data:`PRELOAD` in the background), so the
    first step or trial of a worker does not wait seconds for it."""
    _ensure_fork_server()


def _forked_entry(
    module: str,
    function: str,
    args: tuple[Any, ...],
    env: dict[str, str],
    log_path: str,
    memory_mb: int | None,
    cpus: float | None,
    replace_env: bool = False,
) -> None:
    os.setsid()
    die_with_parent()
    apply_in_child(memory_mb=memory_mb, cpus=cpus)
    resize_loaded_pools(cpus)
    if replace_env:
        # The fork server kept the environment of the process that started it (settings,
        # database URL, credentials): a child that runs untrusted code gets only ``env``.
        os.environ.clear()
    os.environ.update(env)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    code = 1
    try:
        code = int(getattr(importlib.import_module(module), function)(*args) or 0)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_forked(
    module: str,
    function: str,
    args: tuple[Any, ...],
    *,
    env: dict[str, str],
    log: Callable[[str], None],
    timeout: float | None = None,
    memory_mb: int | None = None,
    cpus: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    replace_env: bool = False,
) -> ChildResult:
    """Like :func:`run_child`, for ``module.function(*args)`` forked from the warm server.
    ``replace_env``: the child's environment is ``env`` alone, not added to the server's."""
    with tempfile.TemporaryDirectory(prefix="slipway-child-") as tmp:
        log_path = os.path.join(tmp, "output.log")
        open(log_path, "wb").close()
        _ensure_fork_server()  # from the long-lived thread, before Process.start() looks
        process = _forkserver().Process(
            target=_forked_entry,
            args=(module, function, args, env, log_path, memory_mb, cpus, replace_env),
        )
        process.start()
        started = last_check = last_flush = time.monotonic()
        stopped: str | None = None
        with open(log_path, encoding="utf-8", errors="replace") as reader:
            while True:
                process.join(timeout=0.02)
                now = time.monotonic()
                if process.exitcode is not None:
                    break
                if now - last_flush >= FLUSH_SECONDS:
                    last_flush = now
                    if text := reader.read():
                        log(text)
                if now - last_check >= STOP_CHECK_SECONDS:
                    last_check = now
                    if should_stop():
                        stopped = "stopped"
                if timeout and now - started > timeout:
                    stopped = f"timed out after {timeout:g} s"
                if stopped:
                    pid = process.pid
                    assert pid is not None
                    # The group goes too (what the code started), unless the child has
                    # not even made its group yet — then the child alone is enough.
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    process.kill()
                    process.join()
                    break
            if text := reader.read():
                log(text)
        code = process.exitcode
        process.close()
    return ChildResult(code if stopped is None else None, stopped)
