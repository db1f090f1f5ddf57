"""Execution and step states."""

from __future__ import annotations

from enum import StrEnum


class ExecutionState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class StepState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CACHED = "Cached"
    CANCELLED = "Cancelled"


DONE = frozenset({StepState.SUCCEEDED, StepState.CACHED})
TERMINAL_STEPS = DONE | {StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED}
TERMINAL_EXECUTIONS = frozenset(
    {ExecutionState.SUCCEEDED, ExecutionState.FAILED, ExecutionState.CANCELLED}
)
