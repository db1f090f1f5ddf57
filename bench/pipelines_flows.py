"""No-op pipelines and trials for bench/pipelines.py (imported by worker processes)."""

from __future__ import annotations

from typing import Any

from slipway.pipelines.dsl import pipeline, step


@step(cache=False)
def noop(value: int) -> int:
    return value + 1


@step(cache=False)
def gather(*values: int) -> int:
    return sum(values)


@pipeline(name="chain")
def chain(length: int = 20) -> None:
    value = noop(0)
    for _ in range(19):
        value = noop(value)


@pipeline(name="wide")
def wide(seed: int = 0) -> None:
    start = noop(seed)
    gather(*[noop(start) for _ in range(98)])


def instant(params: dict[str, Any], trial: Any) -> float:
    return float(params["x"])
