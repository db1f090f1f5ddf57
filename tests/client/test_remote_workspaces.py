"""Workspaces through slipway.Client and in process: the same calls on both (the
``platform`` fixture), then a Client bound to a workspace with a token granted it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from slipway.client import Client, connect
from slipway.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.security.resources import Workspace
from tests.client.conftest import SharedPlatform


def test_create_list_and_grant(platform: Any, side: str, shared_platform: SharedPlatform) -> None:
    name = f"ws-{side}-{uuid.uuid4().hex[:6]}"
    created = platform.workspaces.create(name, "a team's share")
    assert isinstance(created, Workspace) and created.description == "a team's share"
    with pytest.raises(Conflict):
        platform.workspaces.create(name)
    with pytest.raises(InvalidInput) as bad:
        platform.workspaces.create("Not A Name")
    assert bad.value.field == "name"
    listed = platform.workspaces.list()
    assert isinstance(listed, Listing) and {"default", name} <= {w.name for w in listed}
    assert platform.workspaces.get(name).name == name
    narrowed = platform.workspaces.set_model_formats(name, ["*/native", "sklearn/skops"])
    assert narrowed.model_formats == ["*/native", "sklearn/skops"]
    assert platform.workspaces.get(name).model_formats == ["*/native", "sklearn/skops"]
    with pytest.raises(InvalidInput) as bad_formats:
        platform.workspaces.set_model_formats(name, ["pickles please"])
    assert bad_formats.value.field == "model_formats"
    assert platform.workspaces.set_model_formats(name, None).model_formats is None

    token, secret = platform.tokens.create(f"t-{name}", "editor", workspaces=[name])
    assert token.workspaces == [name]
    with pytest.raises(InvalidInput) as unknown:
        platform.tokens.create(f"u-{name}", "editor", workspaces=[f"{name}-missing"])
    assert unknown.value.field == "workspaces"

    with Client(shared_platform.url, token=secret, workspace=name) as theirs:
        assert [w.name for w in theirs.workspaces.list()] == [name]
        # Feature groups are kept per workspace: the same name as the default's is another.
        group = f"wsg_{side}"
        features = [{"name": "v", "type": "float"}]
        spec = {"name": group, "record_identifiers": [{"name": "k"}], "features": features}
        theirs.features.create_group(spec)
        assert [g.name for g in theirs.features.list_groups()] == [group]
        assert group not in [g.name for g in shared_platform.services.features.list_groups()]
        with pytest.raises(Forbidden, match="every workspace"):  # the platform admin's
            theirs.workspaces.set_model_formats(name, ["*/native"])
        assert theirs.endpoints.list() == []  # the default's are not this workspace's
        assert theirs.monitoring.list() == []
        assert theirs.pipelines.pipelines() == []
    with (
        Client(shared_platform.url, token=secret) as in_default,
        pytest.raises(Forbidden, match="no role in workspace 'default'"),
    ):
        in_default.features.list_groups()
    platform.tokens.revoke(token.id)


def test_a_client_names_its_workspace_or_none(
    shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInput) as bad:
        Client(shared_platform.url, token=shared_platform.token, workspace="Bad Name")
    assert bad.value.field == "workspace"
    monkeypatch.setenv("SLIPWAY_URL", shared_platform.url)
    monkeypatch.setenv("SLIPWAY_TOKEN", shared_platform.token)
    monkeypatch.setenv("SLIPWAY_WORKSPACE", "team-x")
    with connect() as client:
        assert client.transport.workspace == "team-x"
    monkeypatch.delenv("SLIPWAY_URL")
    with pytest.raises(NotFound):  # the embedded platform has no team-x
        connect()
