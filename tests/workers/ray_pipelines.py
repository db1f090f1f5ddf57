"""Pipelines for the Ray executor's tests (importable by the step processes)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psutil

from slipway.pipelines.dsl import pipeline, step


@step(cache=False)
def crash_once(marker: str, seconds: float) -> dict[str, int]:
    """The first attempt writes the pids of its process and its ancestors (the test kills
    the Ray worker among them) and sleeps; a later attempt returns at once."""
    runs = Path(f"{marker}.runs")
    count = int(runs.read_text()) if runs.exists() else 0
    runs.write_text(str(count + 1))
    if count == 0:
        ancestors = [p.pid for p in psutil.Process().parents()]
        Path(marker).write_text(json.dumps({"pid": os.getpid(), "ancestors": ancestors}))
        time.sleep(seconds)
    return {"value": 41}


@step(cache=False)
def add_one(result: dict[str, int], calls: str) -> int:
    path = Path(calls)
    path.write_text(str(int(path.read_text()) + 1 if path.exists() else 1))
    return result["value"] + 1


@pipeline(name="crash-once")
def crash_then_add(marker: str = "", seconds: float = 60.0, calls: str = "") -> None:
    add_one(crash_once(marker, seconds), calls)


@step(cpus=8, cache=False)
def wide(marker: str, seconds: float) -> int:
    """Asks for more CPUs than the test cluster has; runs once it has them all."""
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return len(os.sched_getaffinity(0))


@pipeline(name="wide")
def wide_pipeline(marker: str = "", seconds: float = 3.0) -> None:
    wide(marker, seconds)
