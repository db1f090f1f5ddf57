"""Training jobs, tuning jobs, schedules and event triggers over REST."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from slipway.api.auth import authorize, services_of
from slipway.api.routes import MAX_ID

router = APIRouter(tags=["jobs"], dependencies=[Depends(authorize())])


def _job(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "state": row.state,
        "attempts": row.attempts,
        "failures": row.failures,
        "mlflow_run_id": row.mlflow_run_id,
        "model_key": row.model_key,
        "output_key": row.output_key,
        "resumed_from_checkpoint": row.resumed_from_checkpoint,
        "spec": row.spec,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "error": row.error,
    }


@router.post("/jobs", status_code=201)
def submit_job(body: dict[str, Any], request: Request) -> dict[str, Any]:
    return _job(services_of(request).training.submit(body))


@router.get("/jobs")
def list_jobs(
    request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    return [_job(j) for j in services_of(request).training.jobs(limit)]


@router.get("/jobs/{name}")
def get_job(name: str, request: Request) -> dict[str, Any]:
    return _job(services_of(request).training.get(name))


@router.get("/jobs/{name}/logs")
def job_logs(
    name: str, request: Request, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0
) -> list[dict[str, Any]]:
    services = services_of(request)
    services.training.get(name)
    return [
        {"id": r.id, "attempt": r.attempt, "time": r.time, "text": r.text}
        for r in services.training.logs(name, after)
    ]


@router.post("/jobs/{name}/stop", status_code=202)
def stop_job(name: str, request: Request) -> dict[str, str]:
    services_of(request).training.stop(name)
    return {"name": name, "state": "Stopped"}


def _tuning(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "state": row.state,
        "best": row.best,
        "spec": row.spec,
        "mlflow_run_id": row.mlflow_run_id,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "error": row.error,
    }


@router.post("/tuning-jobs", status_code=201)
def submit_tuning(body: dict[str, Any], request: Request) -> dict[str, Any]:
    return _tuning(services_of(request).tuning.submit(body))


@router.get("/tuning-jobs")
def list_tuning(request: Request) -> list[dict[str, Any]]:
    return [_tuning(j) for j in services_of(request).tuning.jobs()]


@router.get("/tuning-jobs/{name}")
def get_tuning(name: str, request: Request) -> dict[str, Any]:
    services = services_of(request)
    return _tuning(services.tuning.get(name)) | {"trials": services.tuning.trials(name)}


@router.post("/tuning-jobs/{name}/stop", status_code=202)
def stop_tuning(name: str, request: Request) -> dict[str, str]:
    services_of(request).tuning.stop(name)
    return {"name": name, "state": "Stopped"}


class ScheduleIn(BaseModel):
    name: str
    pipeline: str
    cron: str
    timezone: str = "UTC"
    parameters: dict[str, Any] = Field(default_factory=dict)
    catchup: Literal["none", "latest", "all"] = "latest"


def _schedule(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "pipeline": row.pipeline,
        "cron": row.cron,
        "timezone": row.timezone,
        "parameters": row.parameters,
        "catchup": row.catchup,
        "enabled": row.enabled,
        "next_fire_at": row.next_fire_at,
        "last_fired_at": row.last_fired_at,
    }


@router.post("/schedules", status_code=201)
def create_schedule(body: ScheduleIn, request: Request) -> dict[str, Any]:
    row = services_of(request).schedules.create(
        body.name,
        body.pipeline,
        body.cron,
        timezone=body.timezone,
        parameters=body.parameters,
        catchup=body.catchup,
    )
    return _schedule(row)


@router.get("/schedules")
def list_schedules(request: Request) -> list[dict[str, Any]]:
    return [_schedule(s) for s in services_of(request).schedules.all()]


@router.post("/schedules/{name}/{action}", status_code=202)
def toggle_schedule(
    name: str, action: Literal["enable", "disable"], request: Request
) -> dict[str, Any]:
    services_of(request).schedules.set_enabled(name, action == "enable")
    return {"name": name, "enabled": action == "enable"}


@router.delete("/schedules/{name}", status_code=204)
def delete_schedule(name: str, request: Request) -> None:
    services_of(request).schedules.delete(name)


class TriggerIn(BaseModel):
    name: str
    pipeline: str
    event_type: str
    filters: dict[str, Any] = Field(default_factory=dict)
    parameter_mapping: dict[str, str] = Field(default_factory=dict)
    debounce_seconds: float = Field(default=0.0, ge=0)


class TriggerOut(BaseModel):
    name: str
    pipeline: str
    event_type: str
    filters: dict[str, Any]
    parameter_mapping: dict[str, Any]
    debounce_seconds: float
    enabled: bool
    fired: int
    last_fired_at: datetime | None


@router.post("/triggers", status_code=201, response_model=TriggerOut)
def create_trigger(body: TriggerIn, request: Request) -> TriggerOut:
    row = services_of(request).triggers.create(
        body.name,
        body.pipeline,
        body.event_type,
        filters=body.filters,
        parameter_mapping=body.parameter_mapping,
        debounce_seconds=body.debounce_seconds,
    )
    return TriggerOut.model_validate(row, from_attributes=True)


@router.get("/triggers", response_model=list[TriggerOut])
def list_triggers(request: Request) -> list[TriggerOut]:
    return [
        TriggerOut.model_validate(t, from_attributes=True)
        for t in services_of(request).triggers.all()
    ]


@router.delete("/triggers/{name}", status_code=204)
def delete_trigger(name: str, request: Request) -> None:
    services_of(request).triggers.delete(name)
