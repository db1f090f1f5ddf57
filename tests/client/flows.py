"""Step code the client tests' pipelines run on ``slipway up``'s workers.

Registering (embedded or through the client) records where this module was imported
from (the repository's root) as the pipeline's code path, so the workers — whose working
folder is the platform's home — import it from there. The pipeline functions are wrapped
with a per-test name by the tests (``pipeline(name=...)(greeting)``), so each run
registers a pipeline of its own.
"""

from __future__ import annotations

import time

from slipway.pipelines.dsl import condition, step


@step
def greet(who: str, n: int) -> dict[str, object]:
    print(f"hello {who} x{n}")
    return {"who": who, "count": n}


@step
def shout(greeting: dict[str, object]) -> str:
    return f"{greeting['who']}!".upper()


def greeting(who: str = "world", n: int = 2) -> None:
    """Greet, then shout when the count is at least two."""
    said = greet(who, n)
    with condition(said["count"] >= 2):
        shout(said)


@step(cache=False)
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def napping(seconds: float = 60.0) -> None:
    """One step that sleeps: something to cancel and retry."""
    nap(seconds)


def training_module(name: str) -> str:
    """The source of a small training entry point (a module written beside the test)."""
    return (
        "import os, time\n"
        "def fit(epochs: int = 1, seconds: float = 0.0) -> None:\n"
        "    for epoch in range(epochs):\n"
        "        print(f'epoch {epoch}', flush=True)\n"
        "    time.sleep(seconds)\n"
        "    with open(os.path.join(os.environ['SM_MODEL_DIR'], 'model.txt'), 'w') as f:\n"
        f"        f.write('{name}')\n"
    )
