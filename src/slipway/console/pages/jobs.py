"""Jobs in the console, as a SageMaker Studio user expects them: training, tuning and batch
transform jobs listed side by side (one tab each, paged on the server), and a page per job
— its state, timing and logs; a tuning job's objective by trial with the best trial
highlighted; a batch job's progress chunk by chunk.

A running job's page refreshes its live part (state, progress, logs, trials) from a
``/live`` fragment until the job ends: the fragment of a finished job carries
``data-final`` and the page stops asking. Stopping a job is an editor's action, as over
REST (``POST /api/v1/jobs/{name}/stop`` and its siblings).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from slipway.batch.resources import BatchJob
from slipway.batch.spec import TERMINAL as BATCH_TERMINAL
from slipway.console.charts import Point, line_chart
from slipway.console.paging import PAGE_SIZE, Page, page_number, paginate
from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, action, done, here
from slipway.console.session import services_of, viewer
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.logsink import LogLine
from slipway.core.names import validate_name
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.security.tokens import Role
from slipway.services import Services
from slipway.training.spec import TERMINAL as TRAINING_TERMINAL
from slipway.tuning.resources import Trial, TuningJob
from slipway.tuning.spec import TERMINAL as TUNING_TERMINAL

router = APIRouter(route_class=ConsoleRoute)

Kind = Literal["training", "tuning", "batch"]
KINDS: tuple[tuple[Kind, str], ...] = (
    ("training", "Training jobs"),
    ("tuning", "Tuning jobs"),
    ("batch", "Batch transform jobs"),
)
# How to make one of each, for an empty list (src/slipway/cli/jobs.py, batch.py).
SUBMIT = {
    "training": "jobs submit -f job.yaml",
    "tuning": "tuning submit -f tuning.yaml",
    "batch": "batch submit -f batch.yaml",
}
# A page shows the end of a job's output: the rest stays a CLI or API call away, and a
# chatty job does not make every refresh of its page heavy.
LOG_TAIL = 64_000
# How often a running job's live part is fetched again (milliseconds).
REFRESH_MS = 2000


def _services(request: Request) -> Services:
    return services_of(request).in_workspace(viewer(request).workspace)


def cli(request: Request) -> str:
    """The start of a CLI command acting where the page looks (``slipway -w fraud``)."""
    workspace = viewer(request).workspace
    return "slipway" if workspace == DEFAULT_WORKSPACE else f"slipway --workspace {workspace}"


def _known(name: str, what: str) -> str:
    """``name`` if it could name a job; anything else names none (404, not a 400)."""
    try:
        return validate_name(name, field="name")
    except InvalidInput:
        raise NotFound(f"{what} {name!r} does not exist") from None


def elapsed(start: datetime | None, end: datetime | None, *, running: bool = False) -> float:
    """Seconds a job ran: ``end - start`` (``now - start`` while it runs); -1 for one that
    has not started (so a table sorts it first)."""
    if start is None or (end is None and not running):
        return -1.0
    return max(0.0, (_aware(end or datetime.now(UTC)) - _aware(start)).total_seconds())


def duration(start: datetime | None, end: datetime | None, *, running: bool = False) -> str:
    """:func:`elapsed` for a person: ``3 min 5 s``, ``—`` for a job that has not started."""
    seconds = elapsed(start, end, running=running)
    if seconds < 0:
        return "—"
    if seconds < 1:
        return "< 1 s"
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            parts.append(f"{int(seconds // size)} {unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def log_tail(lines: Sequence[LogLine], *, steps: bool = False) -> tuple[str, bool]:
    """The last :data:`LOG_TAIL` characters of a job's output (each chunk after its step,
    as ``[trial-3]``, when ``steps``), and whether earlier output was left out."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        text = f"[{line.step}] {line.text}" if steps else line.text
        if steps and not text.endswith("\n"):
            text += "\n"
        if size + len(text) > LOG_TAIL:
            if not kept:
                kept.append(text[-LOG_TAIL:])
            return "".join(reversed(kept)), True
        kept.append(text)
        size += len(text)
    return "".join(reversed(kept)), False


# -- the list -----------------------------------------------------------------------------


def _count(services: Services, kind: Kind) -> int:
    if kind == "training":
        return services.training.count()
    if kind == "tuning":
        return services.tuning.count()
    return services.batch.count()


def _page_of(services: Services, kind: Kind, request: Request) -> Page[Any]:
    number = page_number(request)
    offset = (number - 1) * PAGE_SIZE
    total = _count(services, kind)
    items: Sequence[Any]
    if offset >= total:
        items = []
    elif kind == "training":
        items = services.training.jobs(PAGE_SIZE, offset=offset)
    elif kind == "tuning":
        items = services.tuning.jobs(PAGE_SIZE, offset=offset)
    else:
        items = services.batch.list(PAGE_SIZE, offset=offset)
    return Page(items, number, total, PAGE_SIZE)


@router.get("/jobs")
def jobs(request: Request, kind: str = "training") -> Response:
    if kind not in SUBMIT:
        raise InvalidInput("kind must be training, tuning or batch", field="kind")
    chosen: Kind = kind  # type: ignore[assignment]
    services = _services(request)
    page = _page_of(services, chosen, request)
    counts = {k: (page.total if k == chosen else _count(services, k)) for k, _ in KINDS}
    return render(
        request,
        "jobs_list.html",
        title="Jobs",
        kind=chosen,
        kinds=KINDS,
        counts=counts,
        page=page,
        page_link=lambda number: here(request, "/jobs", kind=chosen, page=number),
        command=f"{cli(request)} {SUBMIT[chosen]}",
        duration=duration,
        elapsed=elapsed,
        terminal={
            "training": TRAINING_TERMINAL,
            "tuning": TUNING_TERMINAL,
            "batch": BATCH_TERMINAL,
        }[chosen],
    )


# -- a training job -----------------------------------------------------------------------


def _training(request: Request, name: str, template: str) -> Response:
    services = _services(request)
    job = services.training.get(_known(name, "training job"))
    lines, cut = log_tail(services.training.logs(job.name))
    return render(
        request,
        template,
        title=f"Training job {job.name}",
        job=job,
        final=job.state in TRAINING_TERMINAL,
        entry_point=job.spec.script or job.spec.module or job.spec.function,
        logs=lines,
        logs_cut=cut,
        duration=duration,
        may_stop=viewer(request).may(Role.EDITOR),
        live=here(request, f"/jobs/training/{job.name}/live"),
        cli=cli(request),
        every=REFRESH_MS,
    )


@router.get("/jobs/training/{name}")
def training_job(request: Request, name: str) -> Response:
    return _training(request, name, "jobs_training.html")


@router.get("/jobs/training/{name}/live")
def training_live(request: Request, name: str) -> Response:
    """The running part of a training job's page: state, timing, error and logs."""
    return _training(request, name, "jobs_training_live.html")


@router.post("/jobs/training/{name}/stop")
async def stop_training(request: Request, name: str) -> Response:
    who, _ = await action(request, Role.EDITOR)
    services = _services(request)
    known = _known(name, "training job")
    await anyio.to_thread.run_sync(lambda: services.training.stop(known, actor=who.name))
    return done(request, here(request, f"/jobs/training/{known}"), f"stopped {known}")


# -- a tuning job -------------------------------------------------------------------------


def best_trial(job: TuningJob, trials: Sequence[Trial]) -> int | None:
    """The number of the best finished trial: the one the job recorded when it ended, or
    while it runs the best objective so far in the job's direction."""
    if job.best is not None:
        return job.best.number
    scored = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    if not scored:
        return None
    pick = max if job.spec.direction == "maximize" else min
    return pick(scored, key=lambda t: t.value or 0.0).number


def objective_series(job: TuningJob, trials: Sequence[Trial]) -> dict[str, list[Point]]:
    """The chart's two lines: each finished trial's objective by trial number, and the
    best value reached up to each trial (in the job's direction)."""
    scored = sorted(
        (t for t in trials if t.state == "COMPLETE" and t.value is not None),
        key=lambda t: t.number,
    )
    values: list[Point] = [(t.number, float(t.value or 0.0)) for t in scored]
    best: list[Point] = []
    so_far: float | None = None
    for number, value in values:
        if so_far is None or (
            value > so_far if job.spec.direction == "maximize" else value < so_far
        ):
            so_far = value
        best.append((number, so_far))
    return {job.spec.objective_metric: values, "best so far": best}


def _tuning(request: Request, name: str, template: str) -> Response:
    services = _services(request)
    job = services.tuning.get(_known(name, "tuning job"))
    trials = list(services.tuning.trials(job.name))
    best = best_trial(job, trials)
    page = paginate(sorted(trials, key=lambda t: t.number, reverse=True), request)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state] = states.get(trial.state, 0) + 1
    lines, cut = log_tail(services.tuning.logs(job.name), steps=True)
    chart = line_chart(
        f"{job.spec.objective_metric} by trial ({job.spec.direction})",
        objective_series(job, trials),
        y_label=job.spec.objective_metric,
        empty="no trial has finished yet",
    )
    return render(
        request,
        template,
        title=f"Tuning job {job.name}",
        job=job,
        final=job.state in TUNING_TERMINAL,
        trials=trials,
        states=states,
        best=best,
        best_trial=next((t for t in trials if t.number == best), None),
        page=page,
        page_link=lambda number: here(request, f"/jobs/tuning/{job.name}", page=number),
        chart=chart,
        logs=lines,
        logs_cut=cut,
        duration=duration,
        may_stop=viewer(request).may(Role.EDITOR),
        live=here(request, f"/jobs/tuning/{job.name}/live", page=page.number),
        every=REFRESH_MS,
    )


@router.get("/jobs/tuning/{name}")
def tuning_job(request: Request, name: str) -> Response:
    return _tuning(request, name, "jobs_tuning.html")


@router.get("/jobs/tuning/{name}/live")
def tuning_live(request: Request, name: str) -> Response:
    """The running part of a tuning job's page: state, the chart, trials and logs."""
    return _tuning(request, name, "jobs_tuning_live.html")


@router.post("/jobs/tuning/{name}/stop")
async def stop_tuning(request: Request, name: str) -> Response:
    who, _ = await action(request, Role.EDITOR)
    services = _services(request)
    known = _known(name, "tuning job")
    await anyio.to_thread.run_sync(lambda: services.tuning.stop(known, actor=who.name))
    return done(request, here(request, f"/jobs/tuning/{known}"), f"stopped {known}")


# -- a batch transform job ----------------------------------------------------------------


def output_of(job: BatchJob) -> str:
    """Where a batch job writes its predictions, as a person reads it."""
    output = job.spec.output
    if output.files is not None:
        return f"{output.files.path} ({output.files.format})"
    assert output.kafka is not None
    return f"Kafka topic {output.kafka.topic}"


def input_of(job: BatchJob) -> str:
    given = job.spec.input
    if given.files is not None:
        return given.files.path
    if given.query is not None:
        return f"query: {given.query.sql}"
    assert given.training_set is not None
    return f"training set over {given.training_set.entities}"


def _batch(request: Request, name: str, template: str) -> Response:
    services = _services(request)
    job = services.batch.get(_known(name, "batch job"))
    chunks = services.batch.chunks(job.name)
    return render(
        request,
        template,
        title=f"Batch job {job.name}",
        job=job,
        final=job.state in BATCH_TERMINAL,
        page=paginate(chunks, request),
        page_link=lambda number: here(request, f"/jobs/batch/{job.name}", page=number),
        output=output_of(job),
        source=input_of(job),
        kafka=job.spec.output.kafka is not None,
        duration=duration,
        may_stop=viewer(request).may(Role.EDITOR),
        live=here(request, f"/jobs/batch/{job.name}/live", page=page_number(request)),
        cli=cli(request),
        every=REFRESH_MS,
    )


@router.get("/jobs/batch/{name}")
def batch_job(request: Request, name: str) -> Response:
    return _batch(request, name, "jobs_batch.html")


@router.get("/jobs/batch/{name}/live")
def batch_live(request: Request, name: str) -> Response:
    """The running part of a batch job's page: state, progress and its chunks."""
    return _batch(request, name, "jobs_batch_live.html")


@router.post("/jobs/batch/{name}/stop")
async def stop_batch(request: Request, name: str) -> Response:
    who, _ = await action(request, Role.EDITOR)
    services = _services(request)
    known = _known(name, "batch job")
    await anyio.to_thread.run_sync(lambda: services.batch.stop(known, actor=who.name))
    return done(request, here(request, f"/jobs/batch/{known}"), f"stopped {known}")
