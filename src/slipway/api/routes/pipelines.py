"""Pipelines and executions over REST.

Registering a pipeline imports its code, so the definition is built next to the code (the
SDK, the CLI, :class:`slipway.Client`) and sent here as data (``PUT /pipelines/{name}``,
a :class:`~slipway.pipelines.resources.PipelineDefinition`): the control plane checks the
graph and stores it without importing anything. Its steps run on the workers, which
import the code from the definition's ``code_paths`` — code bundles the caller uploaded,
or folders the admin declared (:mod:`slipway.api.code`) — so registering is an editor's
act, like submitting a training job that runs a script.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from slipway.api.auth import Principal, authorize, services_of, workspace_of
from slipway.api.code import confine_pipeline
from slipway.api.routes import MAX_ID
from slipway.core.errors import InvalidInput
from slipway.core.logsink import LogLine
from slipway.pipelines.resources import Execution, Pipeline, PipelineDefinition, StartRequest
from slipway.pipelines.service import PipelineService

_caller = authorize(scoped=True)  # one object, so FastAPI resolves it once per request
router = APIRouter(tags=["pipelines"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


def pipelines(request: Request) -> PipelineService:
    """The pipelines and executions of the request's workspace."""
    return services_of(request).pipelines.in_workspace(workspace_of(request))


@router.get("/pipelines")
def list_pipelines(request: Request) -> list[Pipeline]:
    return pipelines(request).pipelines()


@router.put("/pipelines/{name}")
def register_pipeline(
    name: str, body: PipelineDefinition, request: Request, caller: Caller
) -> Pipeline:
    """Register a pipeline's definition, or update the one registered under ``name``."""
    if body.name != name:
        raise InvalidInput(f"the body names {body.name!r}, the path {name!r}", field="name")
    confine_pipeline(services_of(request).settings, body)
    return pipelines(request).register(body, actor=caller.name, confined=True)


@router.get("/pipelines/{name}")
def get_pipeline(name: str, request: Request) -> Pipeline:
    return pipelines(request).get(name)


@router.post("/pipelines/{name}/executions", status_code=201)
def run_pipeline(name: str, body: StartRequest, request: Request, caller: Caller) -> dict[str, str]:
    execution_id = pipelines(request).start(
        name,
        body.parameters,
        trigger={"type": "manual", "via": "rest"},
        actor=caller.name,
        confined=True,  # a caller's parameters: its job steps confine them
    )
    return {"id": execution_id}


@router.get("/executions")
def list_executions(
    request: Request,
    pipeline: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Execution]:
    return pipelines(request).executions(pipeline, limit)


@router.get("/executions/{execution_id}")
def describe_execution(execution_id: str, request: Request) -> Execution:
    return pipelines(request).describe(execution_id)


@router.get("/executions/{execution_id}/logs")
def execution_logs(
    execution_id: str,
    request: Request,
    step: str | None = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[LogLine]:
    return pipelines(request).logs(execution_id, step, after)


@router.post("/executions/{execution_id}/cancel", status_code=202)
def cancel_execution(execution_id: str, request: Request, caller: Caller) -> dict[str, str]:
    pipelines(request).cancel(execution_id, actor=caller.name)
    return {"id": execution_id, "state": "Cancelled"}


@router.post("/executions/{execution_id}/retry", status_code=202)
def retry_execution(execution_id: str, request: Request, caller: Caller) -> dict[str, str]:
    pipelines(request).retry(execution_id, actor=caller.name)
    return {"id": execution_id, "state": "Running"}
