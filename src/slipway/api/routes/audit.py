"""The audit log, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from slipway.api.auth import authorize, services_of
from slipway.api.routes import MAX_ID

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[Depends(authorize())])


class AuditOut(BaseModel):
    id: int
    time: datetime
    actor: str
    action: str
    resource: str
    outcome: str
    status_code: int | None
    details: dict[str, Any]


@router.get("", response_model=list[AuditOut])
def list_audit(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    actor: str | None = None,
    action: str | None = None,
) -> list[AuditOut]:
    entries = services_of(request).audit.list(
        limit=limit, before=before, actor=actor, action=action
    )
    return [AuditOut(**e.__dict__) for e in entries]
