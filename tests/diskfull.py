"""Running part of a test on a real, small filesystem that a test can fill up.

A full disk cannot be shown with a mock: what matters is what the libraries underneath
(the artifact store's temp files, delta-rs's object store) really do when ``write`` fails
with ENOSPC. :func:`on_small_disk` runs one function of a test module in a child process
inside new user and mount namespaces (``unshare --user --map-root-user --mount``, which
works for root and for ordinary users alike), where a tmpfs of a few MiB is mounted at a
folder of the test's ``tmp_path``. The mount exists only in that namespace, so it goes
away with the child however the child ends: nothing to unmount, nothing left behind,
and the host's filesystems are never filled.

The function receives the mount point and keyword parameters (JSON values) and returns a
JSON-able dict of what it observed; the test asserts on that in the parent, where pytest
reports it. Everything outside the mount point (the metadata database in ``tmp_path``,
PostgreSQL, Redis) is shared with the parent, which can check it afterwards.

Run as ``python -m tests.diskfull MODULE:FUNCTION MOUNTPOINT SIZE PARAMS_JSON OUT_JSON``.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SMALL_DISK_TIMEOUT = 60.0


def on_small_disk(
    function: Callable[..., dict[str, Any]],
    mountpoint: Path,
    *,
    size: str = "4m",
    timeout: float = SMALL_DISK_TIMEOUT,
    **params: Any,
) -> dict[str, Any]:
    """Call ``function(mountpoint, **params)`` in a child process that sees a ``size``
    tmpfs at ``mountpoint``; return its result, or fail the test with the child's output."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux's unshare is needed to mount a small tmpfs"
    mountpoint.mkdir(parents=True, exist_ok=True)
    out = mountpoint.with_name(mountpoint.name + ".result.json")
    target = f"{function.__module__}:{function.__name__}"
    argv = [
        unshare,
        "--user",
        "--map-root-user",
        "--mount",
        sys.executable,
        "-m",
        "tests.diskfull",
        target,
        str(mountpoint),
        size,
        json.dumps(params),
        str(out),
    ]
    done = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0 or not out.exists():
        raise AssertionError(
            f"{target} on a small disk failed (exit {done.returncode}):\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-8000:]}"
        )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def fill(directory: Path) -> Path:
    """Write a filler file in ``directory`` until the disk is full (ENOSPC); return it.

    Unbuffered writes of one page each, so the disk ends exactly full: the next write of
    anything (a temp file's first byte, a Parquet file, a Delta commit) fails for real."""
    filler = directory / "filler"
    page = b"\0" * 4096
    with open(filler, "wb", buffering=0) as handle:
        while True:
            try:
                handle.write(page)
            except OSError as exc:
                if exc.errno != 28:  # ENOSPC
                    raise
                break
    return filler


def free_bytes(directory: Path) -> int:
    """What is left on the filesystem of ``directory``."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def _main(argv: list[str]) -> int:
    target, mountpoint, size, params, out = argv
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", mountpoint], check=True
    )
    module_name, _, name = target.partition(":")
    function = getattr(importlib.import_module(module_name), name)
    result = function(Path(mountpoint), **json.loads(params))
    Path(out).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
