"""Objective functions for tuning tests (run in trial child processes)."""

from __future__ import annotations

import time
from typing import Any

import mlflow


def quadratic(params: dict[str, Any], trial: Any) -> float:
    """Peak at x=2, y=1 (value 0); reports improving intermediate values."""
    target = -((params["x"] - 2.0) ** 2) - (params["y"] - 1.0) ** 2
    bonus = 0.5 if params.get("kind") == "good" else 0.0
    for step in range(3):
        trial.report(step, target - (2 - step) + bonus)
        time.sleep(float(params.get("pause", 0.05)))
    mlflow.log_param("seen_by_trial", trial.number)
    return target + bonus


def slow_bad(params: dict[str, Any], trial: Any) -> float:
    """Bad parameters are visibly bad from the first report: the pruner stops them."""
    value = float(params["x"])
    for step in range(6):
        trial.report(step, value)
        time.sleep(0.1)
    return value
