"""Training jobs, tuning jobs, schedules and event triggers over REST.

A schedule's or trigger's definition is replaced in place by ``PUT /schedules/{name}`` or
``PUT /triggers/{name}`` (the create body, ``name`` optional: :mod:`slipway.api.bodies`);
its firings and enabled state stay.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from slipway.api.auth import Principal, authorize, services_of, workspace_of
from slipway.api.bodies import named
from slipway.api.code import confine_training_job, confine_tuning_job
from slipway.api.routes import MAX_ID
from slipway.core.logsink import LogLine
from slipway.events.resources import Trigger, TriggerSpec
from slipway.events.triggers import Triggers
from slipway.pipelines.resources import Schedule, ScheduleFire, ScheduleSpec
from slipway.pipelines.schedules import Schedules
from slipway.training.resources import TrainingJob
from slipway.training.service import TrainingService
from slipway.training.spec import TrainingJobSpec
from slipway.tuning.resources import Trial, TuningJob
from slipway.tuning.service import TuningService
from slipway.tuning.spec import TuningJobSpec

# Jobs, tuning jobs, schedules and triggers are all kept per workspace.
_caller = authorize(scoped=True)  # one object, so FastAPI resolves it once per request
router = APIRouter(tags=["jobs"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


class ScheduleUpdate(ScheduleSpec):
    """A schedule's new definition (``PUT /schedules/{name}``): a schedule body whose
    ``name`` may be left out (a schedule cannot be renamed)."""

    name: str | None = None  # type: ignore[assignment]


class TriggerUpdate(TriggerSpec):
    """A trigger's new definition (``PUT /triggers/{name}``): a trigger body whose
    ``name`` may be left out (a trigger cannot be renamed)."""

    name: str | None = None  # type: ignore[assignment]


def training(request: Request) -> TrainingService:
    """The training jobs of the request's workspace."""
    return services_of(request).training.in_workspace(workspace_of(request))


def tuning(request: Request) -> TuningService:
    """The tuning jobs of the request's workspace."""
    return services_of(request).tuning.in_workspace(workspace_of(request))


def schedules(request: Request) -> Schedules:
    """The schedules of the request's workspace."""
    return services_of(request).schedules.in_workspace(workspace_of(request))


def triggers(request: Request) -> Triggers:
    """The triggers of the request's workspace."""
    return services_of(request).triggers.in_workspace(workspace_of(request))


@router.post("/jobs", status_code=201)
def submit_job(body: TrainingJobSpec, request: Request, caller: Caller) -> TrainingJob:
    confine_training_job(services_of(request).settings, body, workspace_of(request))
    return training(request).submit(body, actor=caller.name)


@router.get("/jobs")
def list_jobs(
    request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[TrainingJob]:
    return training(request).jobs(limit)


@router.get("/jobs/{name}")
def get_job(name: str, request: Request) -> TrainingJob:
    return training(request).get(name)


@router.get("/jobs/{name}/logs")
def job_logs(
    name: str, request: Request, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0
) -> list[LogLine]:
    return training(request).logs(name, after)


@router.post("/jobs/{name}/stop", status_code=202)
def stop_job(name: str, request: Request, caller: Caller) -> dict[str, str]:
    training(request).stop(name, actor=caller.name)
    return {"name": name, "state": "Stopped"}


@router.post("/tuning-jobs", status_code=201)
def submit_tuning(body: TuningJobSpec, request: Request, caller: Caller) -> TuningJob:
    confine_tuning_job(services_of(request).settings, body)
    return tuning(request).submit(body, actor=caller.name)


@router.get("/tuning-jobs")
def list_tuning(
    request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[TuningJob]:
    return tuning(request).jobs(limit)


@router.get("/tuning-jobs/{name}")
def get_tuning(name: str, request: Request) -> TuningJob:
    return tuning(request).get(name)


@router.get("/tuning-jobs/{name}/trials")
def tuning_trials(name: str, request: Request) -> list[Trial]:
    return tuning(request).trials(name)


@router.get("/tuning-jobs/{name}/logs")
def tuning_logs(
    name: str, request: Request, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0
) -> list[LogLine]:
    return tuning(request).logs(name, after)


@router.post("/tuning-jobs/{name}/stop", status_code=202)
def stop_tuning(name: str, request: Request, caller: Caller) -> dict[str, str]:
    tuning(request).stop(name, actor=caller.name)
    return {"name": name, "state": "Stopped"}


@router.post("/schedules", status_code=201)
def create_schedule(body: ScheduleSpec, request: Request, caller: Caller) -> Schedule:
    return schedules(request).create(
        body.name,
        body.pipeline,
        body.cron,
        timezone=body.timezone,
        parameters=body.parameters,
        catchup=body.catchup,
        start_at=body.start_at,
        actor=caller.name,
        confined=True,  # a caller's parameters: its executions' job steps confine them
    )


@router.put("/schedules/{name}")
def update_schedule(name: str, body: ScheduleUpdate, request: Request, caller: Caller) -> Schedule:
    """Replace the schedule's definition; its firings and enabled state stay, and its next
    fire time moves when its cron expression or time zone changed."""
    return schedules(request).update(
        named(body, name, "schedule"),
        actor=caller.name,
        confined=True,  # a caller's parameters, as at create
    )


@router.get("/schedules")
def list_schedules(request: Request) -> list[Schedule]:
    return schedules(request).all()


@router.get("/schedules/{name}")
def get_schedule(name: str, request: Request) -> Schedule:
    return schedules(request).get(name)


@router.get("/schedules/{name}/fires")
def schedule_fires(name: str, request: Request) -> list[ScheduleFire]:
    return schedules(request).fires(name)


@router.post("/schedules/{name}/{action}", status_code=202)
def toggle_schedule(
    name: str, action: Literal["enable", "disable"], request: Request, caller: Caller
) -> Schedule:
    return schedules(request).set_enabled(name, action == "enable", actor=caller.name)


@router.delete("/schedules/{name}", status_code=204)
def delete_schedule(name: str, request: Request, caller: Caller) -> None:
    schedules(request).delete(name, actor=caller.name)


@router.post("/triggers", status_code=201)
def create_trigger(body: TriggerSpec, request: Request, caller: Caller) -> Trigger:
    return triggers(request).create(
        body.name,
        body.pipeline,
        body.event_type,
        filters=body.filters,
        parameter_mapping=body.parameter_mapping,
        debounce_seconds=body.debounce_seconds,
        actor=caller.name,
        confined=True,
    )


@router.put("/triggers/{name}")
def update_trigger(name: str, body: TriggerUpdate, request: Request, caller: Caller) -> Trigger:
    """Replace the trigger's definition; its enabled state and firings stay."""
    return triggers(request).update(named(body, name, "trigger"), actor=caller.name, confined=True)


@router.get("/triggers")
def list_triggers(request: Request) -> list[Trigger]:
    return triggers(request).all()


@router.get("/triggers/{name}")
def get_trigger(name: str, request: Request) -> Trigger:
    return triggers(request).get(name)


@router.post("/triggers/{name}/{action}", status_code=202)
def toggle_trigger(
    name: str, action: Literal["enable", "disable"], request: Request, caller: Caller
) -> Trigger:
    return triggers(request).set_enabled(name, action == "enable", actor=caller.name)


@router.delete("/triggers/{name}", status_code=204)
def delete_trigger(name: str, request: Request, caller: Caller) -> None:
    triggers(request).delete(name, actor=caller.name)
