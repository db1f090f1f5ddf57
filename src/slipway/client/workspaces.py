"""Workspaces through the control plane: the methods of the embedded
:class:`~slipway.security.workspaces.WorkspaceService`, with its arguments and return
types. Creating one needs an admin of every workspace; listing shows the caller's."""

from __future__ import annotations

import builtins
from urllib.parse import quote

from slipway.client.transport import Transport
from slipway.core.resource import Listing
from slipway.core.workspace import validate_workspace
from slipway.security.resources import Workspace


class RemoteWorkspaces:
    """:class:`~slipway.security.workspaces.WorkspaceService` through the control plane."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def create(self, name: str, description: str = "", *, actor: str | None = None) -> Workspace:
        del actor  # the server's caller
        validate_workspace(name, field="name")
        response = self.transport.request(
            "POST", "/workspaces", json={"name": name, "description": description}
        )
        return Workspace.model_validate_json(response.content)

    def get(self, name: str) -> Workspace:
        validate_workspace(name, field="name")
        response = self.transport.request("GET", f"/workspaces/{quote(name)}")
        return Workspace.model_validate_json(response.content)

    def list(self) -> Listing[Workspace]:
        """The workspaces the client's token holds a role in."""
        response = self.transport.request("GET", "/workspaces")
        return Listing(Workspace.model_validate(w) for w in response.json())

    def set_model_formats(
        self, name: str, formats: builtins.list[str] | None, *, actor: str | None = None
    ) -> Workspace:
        """The workspace's model format policy (``None``: the platform's alone)."""
        del actor  # the server's caller
        validate_workspace(name, field="name")
        response = self.transport.request(
            "PUT", f"/workspaces/{quote(name)}/model-formats", json={"model_formats": formats}
        )
        return Workspace.model_validate_json(response.content)
