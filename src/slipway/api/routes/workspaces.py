"""Workspaces: a platform admin creates them; every caller lists those it was granted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from slipway.api.auth import Principal, authorize, services_of
from slipway.core.errors import Forbidden
from slipway.security.resources import ModelFormatsUpdate, Role, Workspace, WorkspaceCreate

router = APIRouter(prefix="/workspaces", tags=["workspaces"])
Caller = Annotated[Principal, Depends(authorize(platform=True))]
PlatformAdmin = Annotated[Principal, Depends(authorize(Role.ADMIN, platform=True))]


@router.post("", status_code=201)
def create_workspace(body: WorkspaceCreate, request: Request, admin: PlatformAdmin) -> Workspace:
    """A new, empty workspace; grant it to tokens (``workspaces`` at their creation)."""
    return services_of(request).workspaces.create(body.name, body.description, actor=admin.name)


@router.get("")
def list_workspaces(request: Request, caller: Caller) -> list[Workspace]:
    """The workspaces the caller's token holds a role in (every one for ``"*"``)."""
    return services_of(request).workspaces.list(caller.workspaces)


@router.get("/{name}")
def get_workspace(name: str, request: Request, caller: Caller) -> Workspace:
    """One workspace the caller holds a role in (403 for one it does not: whether it
    exists is not the caller's to learn)."""
    if caller.role_in(name) is None:
        raise Forbidden(f"{caller.name} has no role in workspace {name!r}")
    return services_of(request).workspaces.get(name)


@router.put("/{name}/model-formats")
def set_model_formats(
    name: str, body: ModelFormatsUpdate, request: Request, admin: PlatformAdmin
) -> Workspace:
    """The model formats the workspace's models may be registered and loaded in
    (flavor/serialization patterns such as ``*/native``, within the platform's
    ``registry.allowed_model_formats``); ``null`` goes back to the platform's alone."""
    return services_of(request).workspaces.set_model_formats(
        name, body.model_formats, actor=admin.name
    )
