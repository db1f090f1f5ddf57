"""Batch transform jobs over REST: submit, list, describe, chunks, stop and resume.

Submitting checks the spec, the model and the input, plans the job into chunks and queues
them for workers; it returns at once (state Pending). Poll ``GET /batch-jobs/{name}`` to
follow it. Bodies are batch job specs (:class:`~slipway.batch.spec.BatchJobSpec`),
validated by the service so a bad one is a 400 naming the field and stores nothing.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from slipway.api.auth import Principal, authorize, services_of

_caller = authorize()
router = APIRouter(prefix="/batch-jobs", tags=["batch"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


class BatchJobOut(BaseModel):
    name: str
    state: str = Field(description="Pending, Running, Completed, Failed or Stopped")
    model_name: str
    model_version: int
    digest: str = Field(description="the model files' digest, checked when a chunk loads it")
    chunks_total: int
    chunks_done: int
    rows_done: int
    delivered: int = Field(description="Kafka messages acknowledged")
    failed: int = Field(description="Kafka messages that could not be delivered")
    manifest: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]


class BatchJobDetail(BatchJobOut):
    chunk_states: dict[str, int] = Field(
        description="how many chunks are pending, running, done or failed"
    )


class BatchChunkOut(BaseModel):
    index: int
    state: str = Field(description="pending, running, done or failed")
    source: dict[str, Any] = Field(description="the file (and row groups) the chunk reads")
    rows: int
    delivered: int
    failed: int
    seconds: float
    error: str | None
    finished_at: datetime | None


class BatchControl(BaseModel):
    name: str
    state: str


def _job(row: Any) -> BatchJobOut:
    return BatchJobOut.model_validate(row, from_attributes=True)


@router.get("", response_model=list[BatchJobOut])
def list_batch_jobs(
    request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[BatchJobOut]:
    """Batch jobs, newest first."""
    return [_job(j) for j in services_of(request).batch.list(limit)]


@router.post("", status_code=201, response_model=BatchJobOut)
def submit_batch_job(body: dict[str, Any], request: Request, caller: Caller) -> BatchJobOut:
    return _job(services_of(request).batch.submit(body, actor=caller.name))


@router.get("/{name}", response_model=BatchJobDetail)
def describe_batch_job(name: str, request: Request) -> BatchJobDetail:
    """The job, its progress, and how many of its chunks are in each state."""
    services = services_of(request)
    row = services.batch.get(name)
    states = Counter(c.state for c in services.batch.chunks(name))
    return BatchJobDetail(**_job(row).model_dump(), chunk_states=dict(states))


@router.get("/{name}/chunks", response_model=list[BatchChunkOut])
def batch_job_chunks(name: str, request: Request) -> list[BatchChunkOut]:
    """The job's chunks in order."""
    services = services_of(request)
    services.batch.get(name)  # an unknown job is a 404, not an empty list
    return [
        BatchChunkOut.model_validate(c, from_attributes=True) for c in services.batch.chunks(name)
    ]


@router.post("/{name}/stop", status_code=202, response_model=BatchControl)
def stop_batch_job(name: str, request: Request) -> BatchControl:
    """Stop the job: queued chunks are cancelled, running ones finish and are kept."""
    services = services_of(request)
    services.batch.stop(name)
    return BatchControl(name=name, state=services.batch.get(name).state)


@router.post("/{name}/resume", status_code=202, response_model=BatchJobOut)
def resume_batch_job(name: str, request: Request) -> BatchJobOut:
    """Run a Failed or Stopped job's unfinished chunks again."""
    return _job(services_of(request).batch.resume(name))
