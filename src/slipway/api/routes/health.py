"""Liveness (public) and per-backend health (viewer)."""

from __future__ import annotations

from typing import Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from slipway import __version__
from slipway.api.auth import authorize, services_of
from slipway.core.health import check_all

router = APIRouter(prefix="/health", tags=["health"])


class Live(BaseModel):
    status: Literal["ok"]


class BackendStatus(BaseModel):
    backend: str
    target: str
    status: str
    detail: str
    latency_ms: float | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    backends: list[BackendStatus]


@router.get("/live", response_model=Live)
def live() -> dict[str, Any]:
    """The process answers. Public, for load balancers and supervisors."""
    return {"status": "ok"}


@router.get("", response_model=Health, dependencies=[Depends(authorize())])
async def health(request: Request) -> dict[str, Any]:
    """Each configured backend's reachability, checked now."""
    checks = await anyio.to_thread.run_sync(check_all, services_of(request).settings)
    return {
        "status": "ok" if all(c.ok for c in checks) else "degraded",
        "version": __version__,
        "backends": [c.to_dict() for c in checks],
    }
