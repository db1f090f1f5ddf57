"""Leaving a long-running Slipway process quickly once its own stop is done.

A supervisor (``slipway up``, systemd, Kubernetes) sends SIGTERM and kills after a grace
period, so a stop that takes long becomes a hard kill. Measured on an idle platform, the
work of stopping (closing the database pools, handing work back, finishing requests) takes
milliseconds, while the interpreter's own teardown afterwards — atexit hooks of MLflow and
multiprocessing, then finalizing every module of pandas, pyarrow, scikit-learn and MLflow —
took 1.5-2 s per process, and a worker's fork server outlived it by another ~2 s while it
tore down the same modules. Every process therefore ends with :func:`exit_now` once its
orderly stop has run: output and logs are flushed, the fork server is stopped, and the
process exits without the teardown. Nothing Slipway keeps lives in interpreter state, so
nothing is lost by skipping it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import NoReturn


def stop_fork_server() -> None:
    """Stop this process's multiprocessing fork server, if it started one, without waiting
    for it to tear its preloaded modules down. Only called once no child is running."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None:
        return
    server = forkserver._forkserver
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError, ValueError):
        server._stop()  # closes its pipes and reaps it (at once: it is dead)


def exit_now(code: int = 0) -> NoReturn:
    """Flush what the process wrote, stop its fork server, and exit with ``code``."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    stop_fork_server()
    os._exit(code)


class Stopped(Exception):
    """SIGTERM, handed back by a server that has stopped gracefully (see
    :func:`stop_on_sigterm`)."""


def _stopped(_signum: int, _frame: object) -> None:
    raise Stopped


def stop_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Stopped` in the main thread. uvicorn handles SIGTERM
    itself while it serves (a graceful stop), then puts the previous handler back and
    raises the signal again: with the default handler the process would die there, exit
    -15 and skip its own stop (closing the database pools); with this one, ``run`` raises
    :class:`Stopped` and the caller's stop runs."""
    signal.signal(signal.SIGTERM, _stopped)
