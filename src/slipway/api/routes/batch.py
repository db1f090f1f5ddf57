"""Batch transform jobs over REST: submit, list, describe, chunks, stop and resume.

Submitting checks the spec, the model and the input, plans the job into chunks and queues
them for workers; it returns at once (state Pending). Poll ``GET /batch-jobs/{name}`` to
follow it. Bodies are batch job specs (:class:`~slipway.batch.spec.BatchJobSpec`), so a
bad one is a 400 naming the field and stores nothing; answers are the resources of
:mod:`slipway.batch.resources`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from slipway.api.auth import Principal, authorize, services_of, workspace_of
from slipway.api.paths import confine_batch_job
from slipway.batch.resources import BatchChunk, BatchJob
from slipway.batch.service import MAX_LIST, BatchService
from slipway.batch.spec import BatchJobSpec

_caller = authorize(scoped=True)
router = APIRouter(prefix="/batch-jobs", tags=["batch"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


def batch(request: Request) -> BatchService:
    """The batch jobs of the request's workspace."""
    return services_of(request).batch.in_workspace(workspace_of(request))


class BatchControl(BaseModel):
    name: str
    state: str


@router.get("")
def list_batch_jobs(
    request: Request, limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50
) -> list[BatchJob]:
    """Batch jobs, newest first."""
    return batch(request).list(limit)


@router.post("", status_code=201)
def submit_batch_job(body: BatchJobSpec, request: Request, caller: Caller) -> BatchJob:
    """Check the spec, model and input, plan the job into chunks and queue them. Its
    paths must lie under the data roots (api/paths.py): 400 naming the field otherwise."""
    confine_batch_job(services_of(request).settings, body, workspace_of(request))
    return batch(request).submit(body, actor=caller.name)


@router.get("/{name}")
def describe_batch_job(name: str, request: Request) -> BatchJob:
    """The job, its progress, and how many of its chunks are in each state."""
    return batch(request).get(name)


@router.get("/{name}/chunks")
def batch_job_chunks(name: str, request: Request) -> list[BatchChunk]:
    """The job's chunks in order."""
    return batch(request).chunks(name)


@router.post("/{name}/stop", status_code=202, response_model=BatchControl)
def stop_batch_job(name: str, request: Request, caller: Caller) -> BatchControl:
    """Stop the job: queued chunks are cancelled, running ones finish and are kept."""
    jobs = batch(request)
    jobs.stop(name, actor=caller.name)
    return BatchControl(name=name, state=jobs.get(name).state)


@router.post("/{name}/resume", status_code=202)
def resume_batch_job(name: str, request: Request, caller: Caller) -> BatchJob:
    """Run a Failed or Stopped job's unfinished chunks again. Its paths are checked
    against the data roots again: an admin may have narrowed them since it was submitted."""
    jobs = batch(request)
    confine_batch_job(services_of(request).settings, jobs.get(name).spec, workspace_of(request))
    return jobs.resume(name, actor=caller.name)
