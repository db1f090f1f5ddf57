"""What a work item asks of a machine: the CPUs its step, job or trial declared.

A local worker enforces ``cpus`` by pinning the child to cores (see
:mod:`slipway.runtime.limits`); a cluster scheduler needs the number before the item runs,
so it can place the item where that many CPUs are free. Items carry only ids in their
payload, so the number is read from the row they point at.
"""

from __future__ import annotations

from typing import Any

from slipway.core.db.engine import Database
from slipway.core.queue import WorkItem
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.pipelines.orchestrator import STEP_KIND
from slipway.pipelines.tables import ExecutionRow
from slipway.training.spec import JOB_KIND
from slipway.training.tables import TrainingJobRow
from slipway.tuning.spec import RUNNER_KIND
from slipway.tuning.tables import TuningJobRow


def declared_cpus(db: Database, item: WorkItem) -> float | None:
    """The ``cpus`` the item's pipeline step, training job or tuning job declared, or
    ``None`` when it declared none (or is a kind without such an option)."""
    payload = item.payload
    with db.session() as session:
        if item.kind == STEP_KIND:
            exe = session.get(ExecutionRow, payload.get("execution_id"))
            node = (exe.graph.get("steps", {}) if exe else {}).get(payload.get("step"), {})
            return _positive(node.get("options", {}).get("cpus"))
        if item.kind == JOB_KIND:
            workspace = payload.get("workspace", DEFAULT_WORKSPACE)
            job = session.get(TrainingJobRow, (workspace, payload.get("name")))
            return _positive(job.spec.get("cpus") if job else None)
        if item.kind == RUNNER_KIND:
            workspace = payload.get("workspace", DEFAULT_WORKSPACE)
            tuning = session.get(TuningJobRow, (workspace, payload.get("name")))
            return _positive(tuning.spec.get("cpus") if tuning else None)
    return None


def _positive(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
