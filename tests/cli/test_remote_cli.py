"""The CLI as a client: with ``--url`` / ``SLIPWAY_URL`` and a token, commands run against a
remote control plane (``slipway up``, auth on) and print what they print in process.

Each command runs twice against the same shared platform — in process on its settings,
then remotely with a token — and the two outputs must be equal, table and JSON alike.
"""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from tests.client.models import registered
from tests.shared_platform import SharedPlatform

runner = CliRunner()


@pytest.fixture
def both(shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch) -> SharedPlatform:
    monkeypatch.setenv("COLUMNS", "250")
    return shared_platform


def _run(args: list[str], env: dict[str, str]) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def _same(shared: SharedPlatform, args: list[str]) -> str:
    local = _run(
        args,
        {
            "SLIPWAY_HOME": str(shared.home),
            "SLIPWAY_CONFIG": str(shared.home / "slipway.yaml"),
            "SLIPWAY_URL": "",
        },
    )
    remote = _run(["--url", shared.url, *args], {"SLIPWAY_TOKEN": shared.token})
    assert remote == local
    via_env = _run(args, {"SLIPWAY_URL": shared.url, "SLIPWAY_TOKEN": shared.token})
    assert via_env == local
    return local


def _group(shared: SharedPlatform) -> str:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    shared.services.features.create_group(
        {
            "name": name,
            "record_identifiers": [{"name": "k"}],
            "event_time": "at",
            "features": [{"name": "v", "type": "float"}],
            "description": "remote CLI",
        }
    )
    return name


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_features_list_is_the_same_remotely(both: SharedPlatform, fmt: str) -> None:
    name = _group(both)
    out = _same(both, ["features", "list", "--output", fmt])
    assert name in out
    if fmt == "json":
        assert name in {g["name"] for g in json.loads(out)}


def test_features_describe_is_the_same_remotely(both: SharedPlatform) -> None:
    name = _group(both)
    assert "remote CLI" in _same(both, ["features", "describe", name])


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_models_list_is_the_same_remotely(both: SharedPlatform, fmt: str) -> None:
    _same(both, ["models", "list", "--output", fmt])


def test_a_wrong_token_is_refused_with_the_servers_message(both: SharedPlatform) -> None:
    result = runner.invoke(
        app, ["--url", both.url, "features", "list"], env={"SLIPWAY_TOKEN": "not-a-token"}
    )
    assert result.exit_code == 1
    assert "token" in result.output.lower()


@pytest.mark.parametrize(
    "command", [["status"], ["features", "stream", "anything", "--topic", "t"]]
)
def test_machine_commands_refuse_a_remote_target(both: SharedPlatform, command: list[str]) -> None:
    result = runner.invoke(app, ["--url", both.url, *command], env={"SLIPWAY_TOKEN": both.token})
    assert result.exit_code == 2
    assert "without --url" in result.output


@pytest.mark.parametrize("fmt", ["markdown", "json"])
def test_a_model_card_is_the_same_remotely(
    both: SharedPlatform, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    name = f"card-{uuid.uuid4().hex[:8]}"
    version = registered(both, monkeypatch, name)
    out = _same(both, ["models", "card", name, str(version), "--format", fmt])
    assert name in out
    if fmt == "json":
        assert json.loads(out)["version"] == version


def test_tokens_and_the_audit_log_through_a_remote_server(both: SharedPlatform) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    env = {"SLIPWAY_TOKEN": both.token}
    created = json.loads(
        _run(["--url", both.url, "tokens", "create", name, "--role", "viewer", "-o", "json"], env)
    )
    assert created["name"] == name and created["token"]
    assert name in _run(["--url", both.url, "tokens", "list"], env)
    # the server recorded the create, as the token's holder; the CLI's own name (cli:<user>)
    # is not taken on trust from a remote caller
    entries = both.services.audit.list(action="/api/v1/tokens")
    assert [e.actor for e in entries if e.action.startswith("POST")][:1] == ["shared-tests"]
    created = both.services.audit.list(action="tokens.create")
    assert [e.actor for e in created if e.details.get("name") == name] == ["shared-tests"]
    _run(["--url", both.url, "tokens", "revoke", name], env)
    assert _same(both, ["audit", "--limit", "20", "--output", "json"])  # reads are not audited


def test_tokens_rotate_through_a_remote_server(both: SharedPlatform) -> None:
    name = f"cli-rot-{uuid.uuid4().hex[:8]}"
    env = {"SLIPWAY_TOKEN": both.token}
    url = ["--url", both.url]
    created = json.loads(
        _run([*url, "tokens", "create", name, "--expires-in", "1h", "-o", "json"], env)
    )
    rotated = json.loads(
        _run([*url, "tokens", "rotate", name, "--expires-in", "2d", "-o", "json"], env)
    )
    assert rotated["id"] == created["id"] and rotated["token"] != created["token"]
    assert rotated["expires_at"] > created["expires_at"]
    old = runner.invoke(app, [*url, "features", "list"], env={"SLIPWAY_TOKEN": created["token"]})
    assert old.exit_code == 1 and "unknown API token" in old.output
    new = runner.invoke(app, [*url, "features", "list"], env={"SLIPWAY_TOKEN": rotated["token"]})
    assert new.exit_code == 0, new.output
    [entry] = [
        e
        for e in both.services.audit.list(action="POST /api/v1/tokens/{token_id}/rotate")
        if e.resource.endswith(f"/{name}/rotate")
    ]
    assert (entry.actor, entry.outcome) == ("shared-tests", "success")


def test_workspaces_and_grants_through_a_remote_server(both: SharedPlatform) -> None:
    """An admin creates a workspace and a token granted it; that token, with
    ``--workspace``, sees its workspace and nothing of the default one."""
    workspace, name = f"ws-{uuid.uuid4().hex[:8]}", f"cli-ws-{uuid.uuid4().hex[:8]}"
    url = ["--url", both.url]
    env = {"SLIPWAY_TOKEN": both.token}
    _run([*url, "workspaces", "create", workspace, "--description", "a team"], env)
    assert workspace in _run([*url, "workspaces", "list"], env)
    assert "*/native" in _run([*url, "workspaces", "formats", workspace, "*/native"], env)
    assert "the platform's" in _run([*url, "workspaces", "formats", workspace, "--clear"], env)
    created = json.loads(
        _run(
            [*url, "tokens", "create", name, "--role", "editor", "--in", workspace, "-o", "json"],
            env,
        )
    )
    assert created["workspaces"] == [workspace]
    theirs = {"SLIPWAY_TOKEN": created["token"]}
    listed = json.loads(_run([*url, "workspaces", "list", "-o", "json"], theirs))
    assert [w["name"] for w in listed] == [workspace]
    default = runner.invoke(app, [*url, "features", "list"], env=theirs)
    assert default.exit_code == 1 and "no role in workspace 'default'" in default.output
    scoped = runner.invoke(app, [*url, "--workspace", workspace, "features", "list"], env=theirs)
    assert scoped.exit_code == 0, scoped.output  # its own (empty) list of feature groups
    # Pipelines are kept per workspace too: its own (empty) list.
    theirs_pipelines = runner.invoke(app, [*url, "-w", workspace, "pipelines", "list"], env=theirs)
    assert theirs_pipelines.exit_code == 0, theirs_pipelines.output
    # On this machine commands act in the default workspace: --workspace needs --url.
    local = runner.invoke(
        app,
        ["--workspace", workspace, "features", "list"],
        env={"SLIPWAY_HOME": str(both.home), "SLIPWAY_URL": ""},
    )
    # On this machine --workspace acts in that workspace too (its own, empty, list).
    assert local.exit_code == 0, local.output
    nowhere = runner.invoke(
        app,
        ["--workspace", "nowhere", "features", "list"],
        env={"SLIPWAY_HOME": str(both.home), "SLIPWAY_URL": ""},
    )
    assert nowhere.exit_code == 1 and "workspace 'nowhere' not found" in nowhere.output
    _run([*url, "tokens", "revoke", name], env)
