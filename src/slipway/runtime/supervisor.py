"""Start the platform's processes, watch them, and stop all of them cleanly.

``slipway up`` runs the control plane and a pool of workers (later MLflow, the gateway
and the scheduler) as child processes of one supervisor. Stopping is orderly — SIGTERM,
a grace period, then SIGKILL — and every child also gets a parent-death signal, so even a
supervisor killed with SIGKILL leaves no orphan behind. A worker that dies is restarted
with backoff; a process marked ``essential`` that dies stops the whole platform.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("slipway.supervisor")

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """In the child before exec: receive ``signum`` when the supervisor dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: rely on the orderly stop
        return


@dataclass
class ProcessSpec:
    name: str
    argv: Sequence[str]
    essential: bool = False
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class _Running:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    started: float
    restarts: int = 0


class Supervisor:
    def __init__(self, specs: Sequence[ProcessSpec], *, grace_seconds: float = 10.0) -> None:
        self.specs = list(specs)
        self.grace_seconds = grace_seconds
        self.running: dict[str, _Running] = {}
        self._stop_requested = False

    def _spawn(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        env = os.environ | spec.env
        # A session of its own: a terminal's Ctrl-C reaches only the supervisor, which then
        # stops the children in order instead of having them all interrupted mid-import.
        return subprocess.Popen(
            list(spec.argv), env=env, preexec_fn=die_with_parent, start_new_session=True
        )

    def start(self) -> None:
        for spec in self.specs:
            self.running[spec.name] = _Running(spec, self._spawn(spec), time.monotonic())
            log.info("started %s (pid %d)", spec.name, self.running[spec.name].process.pid)

    def pids(self) -> dict[str, int]:
        return {name: r.process.pid for name, r in self.running.items()}

    def request_stop(self, *_args: object) -> None:
        self._stop_requested = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    def watch(self, *, poll_seconds: float = 0.5, on_tick: Callable[[], None] | None = None) -> int:
        """Supervise until a stop is requested or an essential process dies; returns the
        exit code for the platform (0 on a requested stop)."""
        code = 0
        while not self._stop_requested:
            for name, running in list(self.running.items()):
                status = running.process.poll()
                if status is None:
                    continue
                if running.spec.essential:
                    log.error("%s exited with %s; stopping the platform", name, status)
                    print(f"slipway: {name} exited with status {status}", file=sys.stderr)
                    self._stop_requested = True
                    code = 1
                    break
                delay = min(2**running.restarts, 30)
                if time.monotonic() - running.started < delay:
                    continue
                log.warning("%s exited with %s; restarting", name, status)
                running.process = self._spawn(running.spec)
                running.started = time.monotonic()
                running.restarts += 1
            if on_tick is not None:
                on_tick()
            time.sleep(poll_seconds)
        self.stop()
        return code

    def stop(self) -> None:
        """SIGTERM every child, wait up to the grace period, SIGKILL what remains."""
        alive = [r.process for r in self.running.values() if r.process.poll() is None]
        for process in alive:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for process in alive:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait()
