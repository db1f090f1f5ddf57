"""Pipelines and executions over REST.

Registering a pipeline imports its code, so it happens from the SDK or CLI next to the
code (``slipway pipelines register module:pipeline``), never from a request body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from slipway.api.auth import authorize, services_of
from slipway.api.routes import MAX_ID

router = APIRouter(tags=["pipelines"], dependencies=[Depends(authorize())])


class RunIn(BaseModel):
    parameters: dict[str, Any] = Field(default_factory=dict)


class ExecutionSummary(BaseModel):
    id: str
    pipeline: str
    state: str
    parameters: dict[str, Any]
    trigger: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


@router.get("/pipelines")
def list_pipelines(request: Request) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "target": p.target,
            "digest": p.digest,
            "updated_at": p.updated_at,
            "steps": len(p.graph["steps"]),
            "parameters": p.graph["parameters"],
        }
        for p in services_of(request).pipelines.pipelines()
    ]


@router.get("/pipelines/{name}")
def get_pipeline(name: str, request: Request) -> dict[str, Any]:
    row = services_of(request).pipelines.get(name)
    return {"name": row.name, "target": row.target, "digest": row.digest, "graph": row.graph}


@router.post("/pipelines/{name}/executions", status_code=201)
def run_pipeline(name: str, body: RunIn, request: Request) -> dict[str, str]:
    execution_id = services_of(request).pipelines.start(
        name, body.parameters, trigger={"type": "manual", "via": "rest"}
    )
    return {"id": execution_id}


@router.get("/executions", response_model=list[ExecutionSummary])
def list_executions(
    request: Request,
    pipeline: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ExecutionSummary]:
    rows = services_of(request).pipelines.executions(pipeline, limit)
    return [ExecutionSummary.model_validate(r, from_attributes=True) for r in rows]


@router.get("/executions/{execution_id}")
def describe_execution(execution_id: str, request: Request) -> dict[str, Any]:
    return services_of(request).pipelines.describe(execution_id)


@router.get("/executions/{execution_id}/logs")
def execution_logs(
    execution_id: str,
    request: Request,
    step: str | None = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[dict[str, Any]]:
    rows = services_of(request).pipelines.logs(execution_id, step, after)
    return [
        {"id": r.id, "step": r.step, "attempt": r.attempt, "time": r.time, "text": r.text}
        for r in rows
    ]


@router.post("/executions/{execution_id}/cancel", status_code=202)
def cancel_execution(execution_id: str, request: Request) -> dict[str, str]:
    services_of(request).pipelines.cancel(execution_id)
    return {"id": execution_id, "state": "Cancelled"}


@router.post("/executions/{execution_id}/retry", status_code=202)
def retry_execution(execution_id: str, request: Request) -> dict[str, str]:
    services_of(request).pipelines.retry(execution_id)
    return {"id": execution_id, "state": "Running"}
