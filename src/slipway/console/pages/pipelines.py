"""The console's pipelines pages: what a Studio or Kubeflow user looks for.

``/pipelines`` lists the registered definitions (with each one's last execution), the
schedules and triggers that start them, and the recent executions, paged on the server.
``/pipelines/{name}`` draws a definition's DAG with its parameters and executions.
``/pipelines/executions/{id}`` follows one execution: its DAG coloured by step state, a
step table and a timeline live in a region the console's script re-fetches from
``…/live`` until the execution ends (the fragment then carries ``data-final``); each
step's captured output has a page of its own; an editor can retry or cancel from here,
as through the REST API (same role, audited under the viewer's name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from slipway.console.charts import Node, dag, timeline
from slipway.console.paging import PAGE_SIZE, Page, page_number
from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, action, done, here
from slipway.console.session import services_of, viewer
from slipway.core.errors import NotFound
from slipway.pipelines.resources import Execution, Pipeline, PipelineGraph, StepRun
from slipway.pipelines.service import PipelineService
from slipway.pipelines.states import TERMINAL_EXECUTIONS, ExecutionState
from slipway.security.tokens import Role
from slipway.services import Services

router = APIRouter(route_class=ConsoleRoute)

# A step's log page shows at most this much of its output (the end of it): the CLI's
# ``slipway pipelines logs`` prints all of it.
MAX_LOG_CHARS = 500_000
REGISTER_COMMAND = "slipway pipelines register flows.train:train"


def _services(request: Request) -> Services:
    return services_of(request).in_workspace(viewer(request).workspace)


def _pipelines(request: Request) -> PipelineService:
    return _services(request).pipelines


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """How long something ran: to ``end``, or to now while it still runs (None before it
    started)."""
    if start is None:
        return None
    return max(0.0, (_utc(end or datetime.now(UTC)) - _utc(start)).total_seconds())


def duration(seconds: float | None) -> str:
    """``0.4 s``, ``42 s``, ``3 min 4 s``, ``2 h 5 min`` (``—`` for none)."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _page_of(
    service: PipelineService, request: Request, pipeline: str | None = None
) -> Page[Execution]:
    """The request's page of executions (of ``pipeline``), newest first, read from the
    database one page at a time."""
    number = page_number(request)
    items, total = service.execution_page(
        pipeline, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return Page(items, number, total, PAGE_SIZE)


@dataclass(frozen=True)
class ExecutionRow:
    """An execution as a list shows it."""

    execution: Execution
    started: datetime
    took: str
    href: str


def _execution_rows(request: Request, executions: list[Execution]) -> list[ExecutionRow]:
    return [
        ExecutionRow(
            execution=e,
            started=e.started_at or e.created_at,
            took=duration(seconds_between(e.started_at, e.finished_at)),
            href=here(request, f"/pipelines/executions/{e.id}"),
        )
        for e in executions
    ]


@router.get("/pipelines")
def pipelines_list(request: Request) -> Response:
    services = _services(request)
    found = services.pipelines.pipelines()
    latest = services.pipelines.latest_executions()
    page = _page_of(services.pipelines, request)
    return render(
        request,
        "pipelines_list.html",
        title="Pipelines",
        pipelines=found,
        latest={name: _execution_rows(request, [e])[0] for name, e in latest.items()},
        schedules=services.schedules.all(),
        triggers=services.triggers.all(),
        page=page,
        executions=_execution_rows(request, list(page.items)),
        page_link=lambda number: here(request, "/pipelines", page=number),
        register_command=REGISTER_COMMAND,
    )


def _definition_nodes(graph: PipelineGraph) -> list[Node]:
    """The definition's steps and conditions as DAG nodes (no state: nothing has run)."""
    nodes = [
        Node(
            name=name,
            state="step",
            after=tuple(step.depends_on),
            detail=step.function.rpartition(":")[2][:18],
        )
        for name, step in graph.steps.items()
    ]
    nodes += [
        Node(name=name, state="condition", after=tuple(cond.depends_on), detail=cond.op)
        for name, cond in graph.conditions.items()
    ]
    return nodes


@router.get("/pipelines/{name}")
def pipeline_page(request: Request, name: str) -> Response:
    services = _services(request)
    pipeline = services.pipelines.get(name)
    page = _page_of(services.pipelines, request, name)
    return render(
        request,
        "pipelines_definition.html",
        title=f"Pipeline {pipeline.name}",
        pipeline=pipeline,
        graph=dag(f"Steps of {pipeline.name}", _definition_nodes(pipeline.graph)),
        schedules=[s for s in services.schedules.all() if s.pipeline == name],
        triggers=[t for t in services.triggers.all() if t.pipeline == name],
        page=page,
        executions=_execution_rows(request, list(page.items)),
        page_link=lambda number: here(request, f"/pipelines/{name}", page=number),
    )


@dataclass(frozen=True)
class StepLine:
    """A step (or condition) of an execution as its table shows it."""

    run: StepRun
    condition: bool
    took: str
    error_summary: str
    log_href: str


def _conditions(service: PipelineService, execution: Execution) -> set[str]:
    """The condition nodes among an execution's steps (by its pipeline's definition as
    registered now: only used to leave out log links, which conditions have none of)."""
    try:
        pipeline: Pipeline = service.get(execution.pipeline)
    except NotFound:
        return set()
    return set(pipeline.graph.conditions)


def _live_context(request: Request, execution: Execution) -> dict[str, Any]:
    """What the live region of an execution shows: DAG, steps, timeline, actions."""
    conditions = _conditions(_pipelines(request), execution)
    base = f"/pipelines/executions/{execution.id}"
    lines = []
    for run in execution.steps:
        error = (run.error or "").strip().splitlines()
        lines.append(
            StepLine(
                run=run,
                condition=run.name in conditions,
                took=duration(seconds_between(run.started_at, run.finished_at)),
                error_summary=error[-1] if error else "",
                log_href=here(request, f"{base}/steps/{run.name}/log"),
            )
        )
    nodes = [
        Node(
            name=line.run.name,
            state=str(line.run.state),
            after=tuple(line.run.depends_on),
            href="" if line.condition else line.log_href,
            detail=line.took if line.run.started_at else "",
        )
        for line in lines
    ]
    bars = [
        (line.run.name, line.run.started_at, line.run.finished_at, str(line.run.state))
        for line in lines
        if not line.condition
    ]
    final = execution.state in TERMINAL_EXECUTIONS
    editor = viewer(request).may(Role.EDITOR)
    return {
        "execution": execution,
        "final": final,
        "steps": lines,
        "graph": dag(f"Steps of execution {execution.id[:12]}", nodes),
        "timeline": timeline(f"When the steps of {execution.id[:12]} ran", bars),
        "took": duration(seconds_between(execution.started_at, execution.finished_at)),
        "may_cancel": editor and not final,
        "may_retry": editor
        and execution.state in (ExecutionState.FAILED, ExecutionState.CANCELLED),
        "base": base,
    }


@router.get("/pipelines/executions/{execution_id}")
def execution_page(request: Request, execution_id: str) -> Response:
    execution = _pipelines(request).describe(execution_id)
    return render(
        request,
        "pipelines_execution.html",
        title=f"Execution {execution.id[:12]} of {execution.pipeline}",
        **_live_context(request, execution),
    )


@router.get("/pipelines/executions/{execution_id}/live")
def execution_live(request: Request, execution_id: str) -> Response:
    """The execution page's live region alone (no page around it), re-fetched by the
    console's script until it carries ``data-final``."""
    execution = _pipelines(request).describe(execution_id)
    return render(
        request,
        "pipelines_execution_live.html",
        title=f"Execution {execution.id[:12]}",
        **_live_context(request, execution),
    )


def _log_context(request: Request, execution_id: str, step: str) -> dict[str, Any]:
    service = _pipelines(request)
    execution = service.describe(execution_id)
    if step not in {run.name for run in execution.steps}:
        raise NotFound(f"execution {execution_id} has no step {step!r}")
    attempts: dict[int, list[str]] = {}
    for line in service.logs(execution_id, step):
        attempts.setdefault(line.attempt, []).append(line.text)
    texts = {attempt: "".join(chunks) for attempt, chunks in sorted(attempts.items())}
    cut = {n: len(text) > MAX_LOG_CHARS for n, text in texts.items()}
    return {
        "execution": execution,
        "step": execution.step(step),
        "attempts": {n: text[-MAX_LOG_CHARS:] for n, text in texts.items()},
        "cut": cut,
        "final": execution.state in TERMINAL_EXECUTIONS,
        "base": f"/pipelines/executions/{execution.id}",
    }


@router.get("/pipelines/executions/{execution_id}/steps/{step}/log")
def step_log(request: Request, execution_id: str, step: str) -> Response:
    context = _log_context(request, execution_id, step)
    return render(
        request,
        "pipelines_log.html",
        title=f"Log of {step} in execution {execution_id[:12]}",
        **context,
    )


@router.get("/pipelines/executions/{execution_id}/steps/{step}/log/live")
def step_log_live(request: Request, execution_id: str, step: str) -> Response:
    """A step's output alone, re-fetched while its execution runs."""
    context = _log_context(request, execution_id, step)
    return render(request, "pipelines_log_live.html", title=f"Log of {step}", **context)


@router.post("/pipelines/executions/{execution_id}/retry")
async def retry_execution(request: Request, execution_id: str) -> Response:
    """Run a failed or cancelled execution again from its failed steps (an editor's
    act, as ``POST /api/v1/executions/{id}/retry``)."""
    who, _ = await action(request, Role.EDITOR)
    service = services_of(request).in_workspace(who.workspace).pipelines
    await anyio.to_thread.run_sync(partial(service.retry, execution_id, actor=who.name))
    return done(request, here(request, f"/pipelines/executions/{execution_id}"), "retrying")


@router.post("/pipelines/executions/{execution_id}/cancel")
async def cancel_execution(request: Request, execution_id: str) -> Response:
    """Cancel an unfinished execution and its queued steps (an editor's act, as
    ``POST /api/v1/executions/{id}/cancel``)."""
    who, _ = await action(request, Role.EDITOR)
    service = services_of(request).in_workspace(who.workspace).pipelines
    await anyio.to_thread.run_sync(partial(service.cancel, execution_id, actor=who.name))
    return done(request, here(request, f"/pipelines/executions/{execution_id}"), "cancelled")
