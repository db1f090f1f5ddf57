"""The audit log, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from slipway.api.auth import authenticate, authorize, services_of
from slipway.api.routes import MAX_ID
from slipway.security.resources import AuditEntry, Role

# The log names every caller, path and client address: the auditor's (and admin's) to read.
router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[Depends(authorize(Role.AUDITOR))])


@router.get("", response_model=list[AuditEntry])
def list_audit(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    actor: str | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """The entries of the workspaces the caller's token holds a role in (every entry for
    a token of every workspace): another team's changes and refusals stay its own."""
    return services_of(request).audit.list(
        limit=limit,
        before=before,
        actor=actor,
        action=action,
        workspaces=authenticate(request).workspaces,
    )
