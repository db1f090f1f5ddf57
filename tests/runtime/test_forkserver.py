"""The warm fork server outlives the thread that happened to start it."""

from __future__ import annotations

import multiprocessing.forkserver
import threading
from pathlib import Path

import psutil

from slipway.runtime.childproc import run_forked, start_fork_server
from slipway.runtime.exit import stop_fork_server


def _server_pid() -> int | None:
    pid: int | None = multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    return pid


def test_fork_server_started_by_a_short_lived_thread_survives_it(tmp_path: Path) -> None:
    # The fork server arms a parent-death signal, which Linux ties to the thread that
    # forked it: started from a step's thread, it was killed when that thread ended and the
    # next fork request failed with "EOFError: unexpected EOF" (a CI failure).
    stop_fork_server()

    def a_step() -> None:  # a worker's thread: starts the server, forks once, ends
        start_fork_server()
        first = run_forked(
            "tests.runtime.cpu_probe", "probe", (str(tmp_path / "1"),), env={}, log=print
        )
        assert first.returncode == 0

    starter = threading.Thread(target=a_step)
    starter.start()
    starter.join()
    pid = _server_pid()
    assert pid is not None and (tmp_path / "1").exists()
    out = tmp_path / "2"
    result = run_forked("tests.runtime.cpu_probe", "probe", (str(out),), env={}, log=print)
    assert result.returncode == 0 and out.exists()
    assert _server_pid() == pid  # the same server served it: it was never restarted
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
