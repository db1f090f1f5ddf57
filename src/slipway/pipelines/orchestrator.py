"""Advancing an execution: decide which steps are ready and enqueue them.

``advance`` is the only place execution state moves forward. It runs after an execution
starts, after every step finishes, on retry and on inspection, always inside one write
transaction holding the execution's row, so two workers finishing fan-in parents at the
same moment cannot both enqueue the child. Everything it decides is in the database:
a restarted control plane or worker simply calls it again and carries on.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.events import EventLog
from slipway.core.queue import WorkQueue, WorkState
from slipway.core.workspace import scoped_resource
from slipway.pipelines import values
from slipway.pipelines.states import (
    DONE,
    TERMINAL_EXECUTIONS,
    TERMINAL_STEPS,
    ExecutionState,
    StepState,
)
from slipway.pipelines.tables import ExecutionRow, StepRunRow

QUEUE = "pipelines"
STEP_KIND = "pipeline.step"
CRASH_RETRIES = 2
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def _resolve(
    encoded: dict[str, Any],
    rows: dict[str, StepRunRow],
    params: dict[str, Any],
    artifacts: ArtifactStore,
) -> Any:
    if "ref" in encoded:
        outputs = rows[encoded["ref"]].outputs or {}
        return values.load(artifacts, outputs, encoded["path"])
    if "param" in encoded:
        return params[encoded["param"]]
    return encoded.get("value")


def _fingerprint(encoded: Any, rows: dict[str, StepRunRow], params: dict[str, Any]) -> Any:
    """Inputs as they matter to the cache: outputs by digest, parameters by value."""
    if isinstance(encoded, dict):
        if "ref" in encoded:
            return {
                "digest": (rows[encoded["ref"]].outputs or {}).get("digest"),
                "path": encoded["path"],
            }
        if "param" in encoded:
            return {"param": params.get(encoded["param"])}
        return {k: _fingerprint(v, rows, params) for k, v in encoded.items()}
    if isinstance(encoded, list):
        return [_fingerprint(v, rows, params) for v in encoded]
    return encoded


def cache_key(node: dict[str, Any], rows: dict[str, StepRunRow], params: dict[str, Any]) -> str:
    material = {
        "code": node.get("code_digest"),
        "function": node["function"],
        "inputs": _fingerprint(node["inputs"], rows, params),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class Orchestrator:
    def __init__(self, queue: WorkQueue, events: EventLog, artifacts: ArtifactStore) -> None:
        self.queue = queue
        self.events = events
        self.artifacts = artifacts

    def advance(self, session: Session, execution_id: str) -> ExecutionRow | None:
        exe = session.get(ExecutionRow, execution_id, with_for_update=True)
        if exe is None or exe.state in TERMINAL_EXECUTIONS:
            return exe
        rows = {
            r.step: r
            for r in session.scalars(
                select(StepRunRow).where(StepRunRow.execution_id == execution_id)
            )
        }
        graph = exe.graph
        nodes: dict[str, dict[str, Any]] = {**graph["steps"], **graph["conditions"]}
        self._reconcile(rows)
        changed = True
        while changed:
            changed = False
            for name, node in nodes.items():
                row = rows[name]
                if row.state != StepState.PENDING or row.work_item_id is not None:
                    continue
                deps = [rows[d] for d in node["depends_on"]]
                if any(d.state in (StepState.FAILED, StepState.CANCELLED) for d in deps):
                    continue
                if any(d.state == StepState.SKIPPED for d in deps) or self._gated_off(node, rows):
                    self._finish(row, StepState.SKIPPED)
                    changed = True
                    continue
                if not all(d.state in DONE for d in deps):
                    continue
                if name in graph["conditions"]:
                    self._evaluate(row, node, rows, exe.parameters)
                else:
                    self._start_step(session, exe, row, node, rows)
                changed = True
        self._settle(session, exe, rows)
        return exe

    def _reconcile(self, rows: dict[str, StepRunRow]) -> None:
        """Steps whose work item ended without the step noticing (its worker died on the
        last attempt) take the item's outcome."""
        for row in rows.values():
            if row.work_item_id is None or row.state in TERMINAL_STEPS:
                continue
            item = self.queue.get(row.work_item_id)
            if item.state in (WorkState.FAILED, WorkState.CANCELLED):
                row.error = row.error or item.last_error
                state = StepState.FAILED if item.state == WorkState.FAILED else StepState.CANCELLED
                self._finish(row, state)

    @staticmethod
    def _gated_off(node: dict[str, Any], rows: dict[str, StepRunRow]) -> bool:
        for gate in node.get("conditions", []):
            outputs = rows[gate].outputs or {}
            if rows[gate].state in DONE and outputs.get("value") is False:
                return True
        return False

    def _evaluate(
        self,
        row: StepRunRow,
        node: dict[str, Any],
        rows: dict[str, StepRunRow],
        params: dict[str, Any],
    ) -> None:
        left = _resolve(node["left"], rows, params, self.artifacts)
        right = _resolve(node["right"], rows, params, self.artifacts)
        try:
            result = bool(_COMPARE[node["op"]](left, right))
        except TypeError as exc:
            row.error = f"cannot compare {left!r} {node['op']} {right!r}: {exc}"
            self._finish(row, StepState.FAILED)
            return
        row.outputs = {
            "kind": "json",
            "value": result,
            "digest": str(result).lower(),
            "left": left,
            "right": right,
        }
        row.started_at = utcnow()
        self._finish(row, StepState.SUCCEEDED)

    def _start_step(
        self,
        session: Session,
        exe: ExecutionRow,
        row: StepRunRow,
        node: dict[str, Any],
        rows: dict[str, StepRunRow],
    ) -> None:
        options = node["options"]
        key = cache_key(node, rows, exe.parameters)
        row.cache_key = key
        if options.get("cache", True):
            # A cached output is reused within the execution's workspace only: another
            # workspace's outputs lie in its share and are not this one's to read.
            hit = session.scalars(
                select(StepRunRow)
                .join(ExecutionRow, ExecutionRow.id == StepRunRow.execution_id)
                .where(
                    StepRunRow.cache_key == key,
                    StepRunRow.state == StepState.SUCCEEDED,
                    StepRunRow.outputs.is_not(None),
                    ExecutionRow.workspace == exe.workspace,
                )
                .limit(1)
            ).first()
            if hit is not None:
                row.outputs = hit.outputs
                row.cached_from = hit.execution_id
                row.started_at = utcnow()
                self._finish(row, StepState.CACHED)
                return
        item = self.queue.enqueue(
            QUEUE,
            STEP_KIND,
            {"execution_id": exe.id, "step": row.step},
            # User errors spend the step's retries (counted by the executor); the extra
            # attempts are for workers that die mid-step, which always deserve another go.
            max_attempts=int(options.get("retries", 0)) + 1 + CRASH_RETRIES,
            backoff_seconds=float(options.get("backoff_seconds", 1.0)),
            session=session,
        )
        row.work_item_id = item.id

    @staticmethod
    def _finish(row: StepRunRow, state: StepState) -> None:
        row.state = state
        row.finished_at = utcnow()

    def _settle(self, session: Session, exe: ExecutionRow, rows: dict[str, StepRunRow]) -> None:
        states = [r.state for r in rows.values()]
        if exe.state == ExecutionState.PENDING:
            exe.state = ExecutionState.RUNNING
            exe.started_at = utcnow()
        in_flight = any(
            r.state == StepState.RUNNING or (r.state == StepState.PENDING and r.work_item_id)
            for r in rows.values()
        )
        if in_flight:
            return
        failed = [r for r in rows.values() if r.state == StepState.FAILED]
        if failed:
            exe.state = ExecutionState.FAILED
            exe.error = f"step {failed[0].step} failed"
        elif all(s in TERMINAL_STEPS for s in states):
            exe.state = ExecutionState.SUCCEEDED
        else:
            return
        exe.finished_at = utcnow()
        self.events.append(
            f"pipeline.execution_{exe.state.lower()}",
            scoped_resource(exe.workspace, f"execution/{exe.id}"),
            {"pipeline": exe.pipeline, "state": exe.state, "trigger": exe.trigger},
            session=session,
        )
