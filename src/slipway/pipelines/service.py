"""The pipeline service: register pipelines, start, inspect, cancel and retry executions."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.db.tables import StepLogRow
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.queue import WorkQueue
from slipway.core.waiting import wait_until_final
from slipway.pipelines.dsl import Pipeline
from slipway.pipelines.orchestrator import Orchestrator
from slipway.pipelines.states import TERMINAL_EXECUTIONS, TERMINAL_STEPS, ExecutionState, StepState
from slipway.pipelines.tables import ExecutionRow, PipelineRow, StepRunRow
from slipway.runtime.targets import resolve_target

_COERCE = {"int": int, "float": float, "string": str, "bool": bool}


def _code_path(module_name: str) -> str | None:
    """The sys.path entry a module was imported from (so workers can import it too)."""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve().parent
    for _ in range(module_name.count(".")):
        path = path.parent
    if Path(file).name == "__init__.py":
        path = path.parent
    return str(path)


def load_pipeline(target: str) -> Pipeline:
    """The :class:`Pipeline` a ``module:attribute`` target names."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        obj = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot import pipeline {target!r}: {exc}", field="target") from None
    if not isinstance(obj, Pipeline):
        raise InvalidInput(f"{target!r} is not a @pipeline function", field="target")
    return obj


class PipelineService:
    def __init__(
        self, db: Database, queue: WorkQueue, events: EventLog, artifacts: ArtifactStore
    ) -> None:
        self.db = db
        self.queue = queue
        self.events = events
        self.orchestrator = Orchestrator(queue, events, artifacts)

    # -- definitions ---------------------------------------------------------------

    def register(self, pipeline: Pipeline | str) -> dict[str, Any]:
        """Record a pipeline's graph and where its code lives; re-registering updates it."""
        if isinstance(pipeline, str):
            pipeline = load_pipeline(pipeline)
        graph = pipeline.graph()
        paths = {_code_path(pipeline.fn.__module__)}
        for node in graph["steps"].values():
            fn = resolve_target(node["function"])
            node["code_digest"] = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
            paths.add(_code_path(node["function"].partition(":")[0]))
        graph["code_paths"] = sorted(p for p in paths if p)
        digest = hashlib.sha256(json.dumps(graph, sort_keys=True).encode()).hexdigest()
        now = utcnow()
        with self.db.write() as session:
            row = session.get(PipelineRow, pipeline.name)
            if row is None:
                session.add(
                    PipelineRow(
                        name=pipeline.name,
                        target=pipeline.target,
                        graph=graph,
                        digest=digest,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                row.target, row.graph, row.digest, row.updated_at = (
                    pipeline.target,
                    graph,
                    digest,
                    now,
                )
            self.events.append(
                "pipeline.registered",
                f"pipeline/{pipeline.name}",
                {"digest": digest},
                session=session,
            )
        return {"name": pipeline.name, "digest": digest, "graph": graph}

    def get(self, name: str) -> PipelineRow:
        with self.db.session() as session:
            row = session.get(PipelineRow, name)
            if row is None:
                raise NotFound(f"pipeline {name!r} is not registered")
            return row

    def pipelines(self) -> list[PipelineRow]:
        with self.db.session() as session:
            return list(session.scalars(select(PipelineRow).order_by(PipelineRow.name)))

    # -- executions ----------------------------------------------------------------

    def _parameters(self, graph: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        declared = graph["parameters"]
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise InvalidInput(
                f"unknown parameter(s): {', '.join(unknown)}", field=unknown[0] or "parameters"
            )
        out: dict[str, Any] = {}
        for name, spec in declared.items():
            value = given.get(name, spec["default"])
            if value is None:
                raise InvalidInput(f"parameter {name!r} has no default; give a value", field=name)
            kind = _COERCE[spec["type"]]
            if kind is bool and isinstance(value, str):
                value = {"true": True, "false": False}.get(value.lower(), value)
            try:
                if isinstance(value, bool) and kind is not bool:
                    raise ValueError
                out[name] = kind(value) if not isinstance(value, kind) else value
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"parameter {name!r} must be {spec['type']}, got {value!r}", field=name
                ) from None
        return out

    def start(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        *,
        trigger: dict[str, Any] | None = None,
        session: Session | None = None,
    ) -> str:
        """Start an execution of a registered pipeline; returns its id. Pass ``session``
        to start it atomically with the caller's change (a schedule's firing record)."""
        if session is None:
            with self.db.write() as own:
                return self.start(name, parameters, trigger=trigger, session=own)
        pipeline = session.get(PipelineRow, name)
        if pipeline is None:
            raise NotFound(f"pipeline {name!r} is not registered")
        params = self._parameters(pipeline.graph, parameters or {})
        execution_id = uuid.uuid4().hex
        graph = pipeline.graph
        session.add(
            ExecutionRow(
                id=execution_id,
                pipeline=name,
                target=pipeline.target,
                graph=graph,
                parameters=params,
                state=ExecutionState.PENDING,
                trigger=trigger or {"type": "manual"},
                created_at=utcnow(),
            )
        )
        for node in [*graph["steps"], *graph["conditions"]]:
            session.add(
                StepRunRow(
                    execution_id=execution_id,
                    step=node,
                    state=StepState.PENDING,
                    attempts=0,
                    failures=0,
                )
            )
        session.flush()
        self.events.append(
            "pipeline.execution_started",
            f"execution/{execution_id}",
            {"pipeline": name, "parameters": params, "trigger": trigger or {"type": "manual"}},
            session=session,
        )
        self.orchestrator.advance(session, execution_id)
        return execution_id

    def advance(self, execution_id: str) -> None:
        with self.db.write() as session:
            self.orchestrator.advance(session, execution_id)

    def describe(self, execution_id: str) -> dict[str, Any]:
        exe, steps = self._read(execution_id)
        if exe.state not in TERMINAL_EXECUTIONS:
            # Inspecting an unfinished execution also reconciles crashed workers' steps;
            # that is a write, so a finished one (what consoles and wait() poll most)
            # is only read and takes no write lock.
            self.advance(execution_id)
            exe, steps = self._read(execution_id)
        graph = exe.graph
        order = [*graph["steps"], *graph["conditions"]]
        by_name = {s.step: s for s in steps}
        return {
            "id": exe.id,
            "pipeline": exe.pipeline,
            "state": exe.state,
            "parameters": exe.parameters,
            "trigger": exe.trigger,
            "created_at": exe.created_at,
            "started_at": exe.started_at,
            "finished_at": exe.finished_at,
            "error": exe.error,
            "steps": [
                {
                    "name": name,
                    "state": by_name[name].state,
                    "attempts": by_name[name].attempts,
                    "depends_on": ({**graph["steps"], **graph["conditions"]}[name]["depends_on"]),
                    "cached_from": by_name[name].cached_from,
                    "outputs": by_name[name].outputs,
                    "error": by_name[name].error,
                    "started_at": by_name[name].started_at,
                    "finished_at": by_name[name].finished_at,
                }
                for name in order
            ],
        }

    def _read(self, execution_id: str) -> tuple[ExecutionRow, list[StepRunRow]]:
        with self.db.session() as session:
            exe = session.get(ExecutionRow, execution_id)
            if exe is None:
                raise NotFound(f"execution {execution_id!r} does not exist")
            steps = list(
                session.scalars(select(StepRunRow).where(StepRunRow.execution_id == execution_id))
            )
        return exe, steps

    def executions(self, pipeline: str | None = None, limit: int = 50) -> list[ExecutionRow]:
        query = select(ExecutionRow).order_by(ExecutionRow.created_at.desc()).limit(limit)
        if pipeline:
            query = query.where(ExecutionRow.pipeline == pipeline)
        with self.db.session() as session:
            return list(session.scalars(query))

    def wait(self, execution_id: str, timeout: float = 600.0) -> dict[str, Any]:
        return wait_until_final(
            lambda: self.describe(execution_id),
            lambda d: str(d["state"]),
            TERMINAL_EXECUTIONS,
            what=f"execution {execution_id}",
            timeout=timeout,
        )

    def cancel(self, execution_id: str) -> None:
        with self.db.write() as session:
            exe = session.get(ExecutionRow, execution_id, with_for_update=True)
            if exe is None:
                raise NotFound(f"execution {execution_id!r} does not exist")
            if exe.state in TERMINAL_EXECUTIONS:
                raise Conflict(f"execution {execution_id} is already {exe.state}")
            exe.state = ExecutionState.CANCELLED
            exe.finished_at = utcnow()
            items = []
            for row in session.scalars(
                select(StepRunRow).where(StepRunRow.execution_id == execution_id)
            ):
                if row.state not in TERMINAL_STEPS:
                    row.state = StepState.CANCELLED
                    row.finished_at = utcnow()
                    if row.work_item_id:
                        items.append(row.work_item_id)
            self.events.append(
                "pipeline.execution_cancelled",
                f"execution/{execution_id}",
                {"pipeline": exe.pipeline},
                session=session,
            )
        for item in items:
            with contextlib.suppress(Conflict):  # it may have finished meanwhile
                self.queue.cancel(item)

    def retry(self, execution_id: str) -> None:
        """Run a failed or cancelled execution again from its failed steps; steps that
        succeeded keep their outputs."""
        with self.db.write() as session:
            exe = session.get(ExecutionRow, execution_id, with_for_update=True)
            if exe is None:
                raise NotFound(f"execution {execution_id!r} does not exist")
            if exe.state not in (ExecutionState.FAILED, ExecutionState.CANCELLED):
                raise Conflict(f"only failed or cancelled executions can be retried ({exe.state})")
            for row in session.scalars(
                select(StepRunRow).where(StepRunRow.execution_id == execution_id)
            ):
                if row.state in (
                    StepState.FAILED,
                    StepState.CANCELLED,
                    StepState.SKIPPED,
                    StepState.PENDING,
                    StepState.RUNNING,
                ):
                    row.state, row.work_item_id, row.error = StepState.PENDING, None, None
                    row.failures = 0
                    row.finished_at = None
            exe.state, exe.finished_at, exe.error = ExecutionState.RUNNING, None, None
            self.events.append(
                "pipeline.execution_retried",
                f"execution/{execution_id}",
                {"pipeline": exe.pipeline},
                session=session,
            )
            self.orchestrator.advance(session, execution_id)

    def logs(self, execution_id: str, step: str | None = None, after: int = 0) -> list[StepLogRow]:
        query = (
            select(StepLogRow)
            .where(StepLogRow.execution_id == execution_id, StepLogRow.id > after)
            .order_by(StepLogRow.id)
        )
        if step:
            query = query.where(StepLogRow.step == step)
        with self.db.session() as session:
            return list(session.scalars(query))
