"""The pipeline service: register pipelines, start, inspect, cancel and retry executions.

Every method returns resources (:mod:`slipway.pipelines.resources`), never ORM rows.
Registering stores a :class:`PipelineDefinition`; given a pipeline function it is built
here first (:func:`slipway.pipelines.definition.define`, which imports the code), so the
embedded SDK and the CLI register straight from code, and the REST API stores a
definition built on the caller's machine without importing anything.

Each change (register, start, cancel, retry) is audited in its own transaction, with the
``actor`` the face names (None: this process's user).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.logsink import LogLine, read_logs
from slipway.core.queue import WorkQueue
from slipway.core.resource import Listing
from slipway.core.waiting import wait_until_final
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_resource
from slipway.pipelines.definition import define
from slipway.pipelines.dsl import PipelineFunction
from slipway.pipelines.orchestrator import Orchestrator
from slipway.pipelines.resources import Execution, Pipeline, PipelineDefinition, StepRun
from slipway.pipelines.states import TERMINAL_EXECUTIONS, TERMINAL_STEPS, ExecutionState, StepState
from slipway.pipelines.tables import ExecutionRow, PipelineRow, StepRunRow
from slipway.security.audit import AuditLog

_COERCE = {"int": int, "float": float, "string": str, "bool": bool}


class PipelineService:
    """The pipelines and executions of one workspace (:meth:`in_workspace` gives
    another's). A workspace's steps run with its settings: the platform they open is the
    workspace's (``SLIPWAY_WORKSPACE``), their MLflow runs land in its experiments and
    their outputs in its share of the artifact root (:mod:`slipway.pipelines.executor`)."""

    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        events: EventLog,
        artifacts: ArtifactStore,
        audit: AuditLog | None = None,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        self.db = db
        self.queue = queue
        self.events = events
        self.artifacts = artifacts
        self.audit = audit or AuditLog(db)
        self.workspace = workspace
        self.orchestrator = Orchestrator(queue, events, artifacts)

    def in_workspace(self, workspace: str) -> PipelineService:
        """The pipelines of ``workspace`` (a validated name)."""
        if workspace == self.workspace:
            return self
        return PipelineService(
            self.db, self.queue, self.events, self.artifacts, self.audit, workspace=workspace
        )

    def _resource(self, resource: str) -> str:
        """An event's or audit entry's resource, in this workspace."""
        return scoped_resource(self.workspace, resource)

    # -- definitions ---------------------------------------------------------------

    def register(
        self,
        pipeline: PipelineFunction | PipelineDefinition | str,
        *,
        actor: str | None = None,
        confined: bool = False,
    ) -> Pipeline:
        """Record a pipeline's graph and where its code lives; re-registering updates it
        (audited as ``pipeline.create`` or ``pipeline.update``). ``confined``: it came
        through the API, so its executions' built-in job steps confine what its graph
        gives them (:mod:`slipway.steps.jobs`)."""
        definition = pipeline if isinstance(pipeline, PipelineDefinition) else define(pipeline)
        graph = definition.graph.model_dump(mode="json")
        digest = hashlib.sha256(json.dumps(graph, sort_keys=True).encode()).hexdigest()
        now = utcnow()
        with self.db.write() as session:
            row = session.get(PipelineRow, (self.workspace, definition.name))
            created = row is None
            if row is None:
                row = PipelineRow(
                    workspace=self.workspace,
                    name=definition.name,
                    target=definition.target,
                    graph=graph,
                    digest=digest,
                    created_at=now,
                    updated_at=now,
                    confined=confined,
                )
                session.add(row)
            else:
                row.target, row.graph, row.digest, row.updated_at = (
                    definition.target,
                    graph,
                    digest,
                    now,
                )
                row.confined = confined
            self.events.append(
                "pipeline.registered",
                self._resource(f"pipeline/{definition.name}"),
                {"digest": digest},
                session=session,
            )
            self.audit.changed(
                actor,
                "pipeline.create" if created else "pipeline.update",
                self._resource(f"pipeline/{definition.name}"),
                {"digest": digest, "target": definition.target},
                session=session,
            )
            session.flush()
            return Pipeline.model_validate(row)

    def get(self, name: str) -> Pipeline:
        with self.db.session() as session:
            row = session.get(PipelineRow, (self.workspace, name))
            if row is None:
                raise NotFound(f"pipeline {name!r} is not registered")
            return Pipeline.model_validate(row)

    def pipelines(self) -> Listing[Pipeline]:
        with self.db.session() as session:
            rows = session.scalars(
                select(PipelineRow)
                .where(PipelineRow.workspace == self.workspace)
                .order_by(PipelineRow.name)
            )
            return Listing(Pipeline.model_validate(row) for row in rows)

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
        actor: str | None = None,
        confined: bool = False,
    ) -> str:
        """Start an execution of a registered pipeline; returns its id. Pass ``session``
        to start it atomically with the caller's change (a schedule's firing record).
        Audited as ``pipeline.start`` (a schedule or trigger starts as ``scheduler``).
        ``confined``: its parameters came through the API (a caller's, or a schedule's or
        trigger's made there); an execution of a confined pipeline is confined too."""
        if session is None:
            with self.db.write() as own:
                return self.start(
                    name, parameters, trigger=trigger, session=own, actor=actor, confined=confined
                )
        pipeline = session.get(PipelineRow, (self.workspace, name))
        if pipeline is None:
            raise NotFound(f"pipeline {name!r} is not registered")
        params = self._parameters(pipeline.graph, parameters or {})
        execution_id = uuid.uuid4().hex
        graph = pipeline.graph
        session.add(
            ExecutionRow(
                id=execution_id,
                workspace=self.workspace,
                pipeline=name,
                target=pipeline.target,
                graph=graph,
                parameters=params,
                state=ExecutionState.PENDING,
                trigger=trigger or {"type": "manual"},
                created_at=utcnow(),
                confined=confined or pipeline.confined,
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
            self._resource(f"execution/{execution_id}"),
            {"pipeline": name, "parameters": params, "trigger": trigger or {"type": "manual"}},
            session=session,
        )
        self.audit.changed(
            actor,
            "pipeline.start",
            self._resource(f"pipeline/{name}"),
            {"execution": execution_id, "trigger": trigger or {"type": "manual"}},
            session=session,
        )
        self.orchestrator.advance(session, execution_id)
        return execution_id

    def advance(self, execution_id: str) -> None:
        with self.db.write() as session:
            self.orchestrator.advance(session, execution_id)

    def describe(self, execution_id: str) -> Execution:
        """The execution with each step's state, in graph order; another workspace's
        execution is not found."""
        exe, steps = self._read(execution_id)
        if exe.state not in TERMINAL_EXECUTIONS:
            # Inspecting an unfinished execution also reconciles crashed workers' steps;
            # that is a write, so a finished one (what consoles and wait() poll most)
            # is only read and takes no write lock.
            self.advance(execution_id)
            exe, steps = self._read(execution_id)
        nodes = {**exe.graph["steps"], **exe.graph["conditions"]}
        by_name = {s.step: s for s in steps}
        runs = [
            StepRun(
                name=name,
                state=StepState(by_name[name].state),
                attempts=by_name[name].attempts,
                depends_on=node["depends_on"],
                cached_from=by_name[name].cached_from,
                outputs=by_name[name].outputs,
                error=by_name[name].error,
                started_at=by_name[name].started_at,
                finished_at=by_name[name].finished_at,
            )
            for name, node in nodes.items()
        ]
        return Execution.model_validate(exe).model_copy(update={"steps": runs})

    def _read(self, execution_id: str) -> tuple[ExecutionRow, list[StepRunRow]]:
        with self.db.session() as session:
            exe = self._execution(session, execution_id)
            steps = list(
                session.scalars(select(StepRunRow).where(StepRunRow.execution_id == execution_id))
            )
        return exe, steps

    def executions(self, pipeline: str | None = None, limit: int = 50) -> Listing[Execution]:
        """Recent executions (of ``pipeline``), newest first, without their steps."""
        query = (
            select(ExecutionRow)
            .where(ExecutionRow.workspace == self.workspace)
            .order_by(ExecutionRow.created_at.desc())
            .limit(limit)
        )
        if pipeline:
            query = query.where(ExecutionRow.pipeline == pipeline)
        with self.db.session() as session:
            return Listing(Execution.model_validate(row) for row in session.scalars(query))

    def execution_page(
        self, pipeline: str | None = None, *, offset: int = 0, limit: int = 50
    ) -> tuple[Listing[Execution], int]:
        """A page of executions (of ``pipeline``), newest first, without their steps, and
        how many there are in all: a console pages through every execution on the server
        without reading them all. Ties in creation time are ordered by id, so pages
        neither repeat nor skip an execution."""
        where = [ExecutionRow.workspace == self.workspace]
        if pipeline:
            where.append(ExecutionRow.pipeline == pipeline)
        query = (
            select(ExecutionRow)
            .where(*where)
            .order_by(ExecutionRow.created_at.desc(), ExecutionRow.id.desc())
            .offset(max(0, offset))
            .limit(max(0, limit))
        )
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(ExecutionRow).where(*where))
            page = Listing(Execution.model_validate(row) for row in session.scalars(query))
        return page, int(total or 0)

    def latest_executions(self) -> dict[str, Execution]:
        """Each pipeline's newest execution (without its steps), by pipeline name, in one
        query: what a list of pipelines shows as their last run."""
        newest = (
            select(ExecutionRow.pipeline, func.max(ExecutionRow.created_at).label("at"))
            .where(ExecutionRow.workspace == self.workspace)
            .group_by(ExecutionRow.pipeline)
            .subquery()
        )
        query = (
            select(ExecutionRow)
            .join(
                newest,
                (ExecutionRow.pipeline == newest.c.pipeline)
                & (ExecutionRow.created_at == newest.c.at),
            )
            .where(ExecutionRow.workspace == self.workspace)
            .order_by(ExecutionRow.id)  # two started at the same instant: one, always the same
        )
        with self.db.session() as session:
            return {row.pipeline: Execution.model_validate(row) for row in session.scalars(query)}

    def wait(
        self,
        execution_id: str,
        timeout: float = 600.0,
        progress: Callable[[Execution], None] | None = None,
    ) -> Execution:
        """The execution once it has finished (any final state); ``TimeoutError`` after
        ``timeout`` seconds. ``progress`` sees each state read on the way (its steps'
        states), e.g. to draw a table or a bar."""

        def poll() -> Execution:
            current = self.describe(execution_id)
            if progress is not None:
                progress(current)
            return current

        return wait_until_final(
            poll,
            lambda e: str(e.state),
            TERMINAL_EXECUTIONS,
            what=f"execution {execution_id}",
            timeout=timeout,
        )

    def cancel(self, execution_id: str, *, actor: str | None = None) -> None:
        """Cancel an unfinished execution and its queued steps (``pipeline.cancel``)."""
        with self.db.write() as session:
            exe = self._execution(session, execution_id, lock=True)
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
                self._resource(f"execution/{execution_id}"),
                {"pipeline": exe.pipeline},
                session=session,
            )
            self.audit.changed(
                actor,
                "pipeline.cancel",
                self._resource(f"execution/{execution_id}"),
                {"pipeline": exe.pipeline},
                session=session,
            )
        for item in items:
            with contextlib.suppress(Conflict):  # it may have finished meanwhile
                self.queue.cancel(item)

    def retry(self, execution_id: str, *, actor: str | None = None) -> None:
        """Run a failed or cancelled execution again from its failed steps; steps that
        succeeded keep their outputs (``pipeline.retry``)."""
        with self.db.write() as session:
            exe = self._execution(session, execution_id, lock=True)
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
                self._resource(f"execution/{execution_id}"),
                {"pipeline": exe.pipeline},
                session=session,
            )
            self.audit.changed(
                actor,
                "pipeline.retry",
                self._resource(f"execution/{execution_id}"),
                {"pipeline": exe.pipeline},
                session=session,
            )
            self.orchestrator.advance(session, execution_id)

    def logs(self, execution_id: str, step: str | None = None, after: int = 0) -> Listing[LogLine]:
        """The steps' captured output after position ``after`` (a line's ``id``)."""
        with self.db.session() as session:
            self._execution(session, execution_id)  # NotFound for another workspace's
        return read_logs(self.db, execution_id, step=step, after=after)

    def _execution(
        self, session: Session, execution_id: str, *, lock: bool = False
    ) -> ExecutionRow:
        """Execution ``execution_id`` of this workspace; another workspace's is not found."""
        exe = session.get(ExecutionRow, execution_id, with_for_update=lock)
        if exe is None or exe.workspace != self.workspace:
            raise NotFound(f"execution {execution_id!r} does not exist")
        return exe
