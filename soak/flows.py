"""The pipeline the soak test runs again and again (importable by the platform's workers
through PYTHONPATH): two small steps, so each execution queues work, starts step
processes and stores outputs — everything that could leak per execution."""

from __future__ import annotations

from slipway.pipelines.dsl import pipeline, step


@step
def numbers(n: int) -> list[int]:
    return list(range(n))


@step
def total(values: list[int]) -> dict[str, int]:
    return {"sum": sum(values), "count": len(values)}


@pipeline(name="soak-sum")
def summed(n: int = 10) -> None:
    total(numbers(n))
