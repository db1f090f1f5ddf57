"""Running one step on a worker: a child process, its logs, its timeout, its outcome.

The step's user code runs in ``python -m slipway.pipelines.runner`` with a memory cap;
its stdout and stderr are streamed into the database in chunks (``slipway pipelines logs
--follow`` reads them while it runs). A failure is the user's traceback; it is retried
with backoff while attempts remain, then the step fails. A cancelled execution or a lost
lease kills the child. Outputs are recorded only with the step's success, so a worker
killed mid-step leaves nothing half-written behind — the retry starts clean.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import BackendUnavailable, LeaseLost, SlipwayError
from slipway.core.logsink import log_writer
from slipway.core.settings import Settings
from slipway.core.work import PermanentFailure, WorkContext
from slipway.core.workspace import WORKSPACE_ENV, scoped_resource
from slipway.pipelines import values
from slipway.pipelines.service import PipelineService
from slipway.pipelines.states import TERMINAL_EXECUTIONS, TERMINAL_STEPS, StepState
from slipway.pipelines.tables import ExecutionRow, PipelineRow, StepRunRow
from slipway.runtime.bundles import import_paths
from slipway.runtime.childproc import run_forked
from slipway.tracking.config import user_tracking_env


@dataclass(frozen=True)
class StepDeps:
    """What running a pipeline step uses of the platform, given once when it is assembled
    (:func:`slipway.workers.handlers.handlers`)."""

    settings: Settings
    db: Database
    pipelines: PipelineService


class StepFailed(SlipwayError):
    """User code failed (its traceback is the message); the queue retries it."""

    code = "step_failed"


class StepFailedForGood(PermanentFailure):
    """User code failed and the step's retries are spent."""


def run_step(context: WorkContext, deps: StepDeps) -> dict[str, Any]:
    """The ``pipeline.step`` work handler."""
    execution_id, step = context.payload["execution_id"], context.payload["step"]
    with deps.db.write() as session:
        exe = session.get(ExecutionRow, execution_id)
        row = session.get(StepRunRow, (execution_id, step))
        if exe is None or row is None:
            return {"ignored": "unknown execution or step"}
        if exe.state in TERMINAL_EXECUTIONS or row.state in TERMINAL_STEPS:
            return {"ignored": f"execution {exe.state}, step {row.state}"}
        row.state = StepState.RUNNING
        row.attempts = context.attempt
        row.started_at = utcnow()
        node = exe.graph["steps"][step]
        workspace = exe.workspace
        pipeline = session.get(PipelineRow, (workspace, exe.pipeline))
        code_paths = pipeline.graph.get("code_paths", []) if pipeline else []
        outputs = {
            r.step: r.outputs
            for r in session.scalars(
                select(StepRunRow).where(StepRunRow.execution_id == execution_id)
            )
            if r.outputs is not None
        }
        spec = {
            "target": node["function"],
            "code_paths": code_paths,
            "artifact_root": deps.settings.artifact_root,
            "inputs": node["inputs"],
            "outputs": outputs,
            "parameters": exe.parameters,
            # Its outputs lie in its workspace's share of the artifact root.
            "objects": scoped_resource(workspace, values.PREFIX),
        }
    spec["code_paths"] = import_paths(deps.settings, spec["code_paths"])
    result = _run_child(context, deps, execution_id, step, spec, node["options"], workspace)
    with deps.db.write() as session:
        row = session.get(StepRunRow, (execution_id, step), with_for_update=True)
        assert row is not None
        if result.get("ok"):
            row.state = StepState.SUCCEEDED
            row.outputs = result["output"]
            row.error = None
            row.finished_at = utcnow()
        elif not result.get("cancelled") and row.failures < int(node["options"]["retries"]):
            row.failures += 1
            row.state = StepState.PENDING  # the queue retries it after the backoff
            row.error = result["error"]
        else:
            row.failures += 0 if result.get("cancelled") else 1
            row.state = StepState.CANCELLED if result.get("cancelled") else StepState.FAILED
            row.error = result["error"]
            row.finished_at = utcnow()
        deps.pipelines.orchestrator.advance(session, execution_id)
    if not result.get("ok"):
        if row.state == StepState.PENDING:
            raise StepFailed(result["error"])
        raise StepFailedForGood(result["error"])
    return {"output": result["output"]["digest"]}


def _run_child(
    context: WorkContext,
    deps: StepDeps,
    execution_id: str,
    step: str,
    spec: dict[str, Any],
    options: dict[str, Any],
    workspace: str,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="slipway-step-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(spec))
        # The step acts in its execution's workspace: the platform its built-in steps
        # open (slipway.steps.platform) and the MLflow experiments its code logs to.
        env = (
            deps.settings.as_env()
            | user_tracking_env(deps.settings, workspace)
            | {
                "PYTHONUNBUFFERED": "1",
                "SLIPWAY_EXECUTION_ID": execution_id,
                "SLIPWAY_STEP": step,
                WORKSPACE_ENV: workspace,
            }
        )
        outcome = run_forked(
            "slipway.pipelines.runner",
            "main",
            (str(spec_path), str(result_path)),
            env=env,
            log=log_writer(deps.db, execution_id, step, context.attempt),
            timeout=options.get("timeout_seconds"),
            memory_mb=options.get("memory_mb"),
            cpus=options.get("cpus"),
            should_stop=lambda: context.lease_lost() or _cancelled(deps, execution_id),
        )
        if outcome.stopped == "stopped":
            if not _cancelled(deps, execution_id):
                # The lease is gone (expired, or the worker is stopping and hands the step
                # back): the step's row belongs to whoever runs it next; write nothing.
                raise LeaseLost(f"step {step} of {execution_id} stopped: lease lost")
            return {"ok": False, "cancelled": True, "error": "cancelled"}
        if outcome.stopped:
            return {"ok": False, "error": f"step {outcome.stopped}"}
        if not result_path.exists():
            return {
                "ok": False,
                "error": f"step process died (exit status {outcome.returncode})"
                " without a result; out of memory?",
            }
        result: dict[str, Any] = json.loads(result_path.read_text())
        return result


def _cancelled(deps: StepDeps, execution_id: str) -> bool:
    """Whether the execution was cancelled; unknown while the database is away, and then
    the step runs on (killing it would only make it run again)."""
    try:
        with deps.db.session() as session:
            exe = session.get(ExecutionRow, execution_id)
            return exe is None or exe.state == "Cancelled"
    except BackendUnavailable:
        return False
