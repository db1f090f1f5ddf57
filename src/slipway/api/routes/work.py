"""The work queue and the events outbox, for operators and the console."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from slipway.api.auth import authorize, services_of, workspace_of
from slipway.api.routes import MAX_ID, Int64
from slipway.core.queue import WorkItem, WorkState

router = APIRouter(tags=["work"], dependencies=[Depends(authorize())])
# Events are read per workspace: each workspace's own, as its triggers and alerts see them.
events_router = APIRouter(tags=["work"], dependencies=[Depends(authorize(scoped=True))])


class WorkItemOut(BaseModel):
    id: int
    queue: str
    kind: str
    payload: dict[str, Any]
    priority: int
    state: WorkState
    attempts: int
    max_attempts: int
    available_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    result: dict[str, Any] | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, item: WorkItem) -> WorkItemOut:
        return cls.model_validate(item, from_attributes=True)


class EventOut(BaseModel):
    id: int
    type: str
    resource: str
    payload: dict[str, Any]
    time: datetime


@router.get("/work", response_model=list[WorkItemOut])
def list_work(
    request: Request,
    queue: str | None = None,
    state: WorkState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WorkItemOut]:
    items = services_of(request).queue.list(queue=queue, state=state, limit=limit)
    return [WorkItemOut.of(i) for i in items]


@router.get("/work/{item_id}", response_model=WorkItemOut)
def get_work(item_id: Int64, request: Request) -> WorkItemOut:
    return WorkItemOut.of(services_of(request).queue.get(item_id))


@router.post("/work/{item_id}/cancel", response_model=WorkItemOut)
def cancel_work(item_id: Int64, request: Request) -> WorkItemOut:
    return WorkItemOut.of(services_of(request).queue.cancel(item_id))


@events_router.get("/events", response_model=list[EventOut])
def list_events(
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type: Annotated[list[str] | None, Query()] = None,
) -> list[EventOut]:
    # The outbox is read in the request's workspace: other workspaces' events stay theirs.
    events = services_of(request).events.read(
        after=after, limit=limit, types=type, workspace=workspace_of(request)
    )
    return [EventOut(**e.__dict__) for e in events]
