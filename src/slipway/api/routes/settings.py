"""The effective settings, secrets masked (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from slipway.api.auth import authorize, services_of
from slipway.security.tokens import Role

router = APIRouter(
    prefix="/settings",
    tags=["settings"],
    dependencies=[Depends(authorize(Role.ADMIN, platform=True))],
)


@router.get("")
def show_settings(request: Request) -> dict[str, Any]:
    return services_of(request).settings.masked()
