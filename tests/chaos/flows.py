"""A pipeline the chaos tests run on a worker process (importable there via PYTHONPATH).

Its first step says it has started (a marker file) and then holds until the test lets it
go (another file), so the test knows a step is in flight while it stops a backing
service, and chooses when the step may finish: after the service is back, or while it is
still down. The step's own loop is bounded, so it can never hang a worker."""

from __future__ import annotations

import time
from pathlib import Path

from slipway.pipelines.dsl import pipeline, step


@step
def hold(folder: str) -> dict[str, int]:
    Path(folder, "started").write_text("1")
    deadline = time.monotonic() + 120
    while not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    Path(folder, "finished").write_text("1")
    return {"held": 1}


@step
def after(value: dict[str, int]) -> dict[str, int]:
    return {"after": value["held"] + 1}


@pipeline(name="chaos-held")
def held(folder: str = "") -> None:
    after(hold(folder))
