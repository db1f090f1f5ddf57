"""Workspaces and token grants as services, on both engines, and the migration that
brought them to databases with tokens in them."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from slipway.core.db import Database, downgrade, upgrade
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.workspace import (
    ALL_WORKSPACES,
    DEFAULT_WORKSPACE,
    check_grants,
    check_key_workspace,
    key_workspace,
)
from slipway.security.audit import AuditLog
from slipway.security.resources import Role
from slipway.security.tokens import TokenService
from slipway.security.workspaces import WorkspaceService


def test_the_default_workspace_exists_and_others_are_created_once(db: Database) -> None:
    workspaces = WorkspaceService(db)
    assert [w.name for w in workspaces.list()] == [DEFAULT_WORKSPACE]
    created = workspaces.create("fraud", "the fraud team", actor="alice")
    assert (created.name, created.description, created.created_by) == (
        "fraud",
        "the fraud team",
        "alice",
    )
    with pytest.raises(Conflict):
        workspaces.create("fraud", actor="bob")
    for bad in ("Fraud", "", "a/b", "x" * 64, "team_a", "a", "team-", "api", "workspaces"):
        with pytest.raises(InvalidInput) as info:
            workspaces.create(bad, actor="bob")
        assert info.value.field == "name"
    with pytest.raises(NotFound):
        workspaces.get("growth")
    assert [w.name for w in workspaces.list(["fraud", "growth"])] == ["fraud"]
    assert [w.name for w in workspaces.list(["*"])] == ["default", "fraud"]
    [entry] = AuditLog(db).list(action="workspaces.create")
    assert (entry.actor, entry.resource) == ("alice", "workspace/fraud")


def test_a_token_holds_its_role_in_the_workspaces_it_was_granted(db: Database) -> None:
    WorkspaceService(db).create("fraud", actor="t")
    tokens = TokenService(db)
    editor, secret = tokens.create("e", Role.EDITOR, workspaces=["fraud"])
    assert editor.workspaces == ["fraud"]
    found = tokens.authenticate(secret)
    assert (found.role_in("fraud"), found.role_in(DEFAULT_WORKSPACE)) == (Role.EDITOR, None)
    assert not found.may_invoke("anything")  # endpoints live in the default workspace
    viewer, _ = tokens.create("v", Role.VIEWER)
    assert viewer.workspaces == [DEFAULT_WORKSPACE]
    admin, _ = tokens.create("a", Role.ADMIN)
    assert admin.workspaces == ["*"] and admin.role_in("fraud") is Role.ADMIN
    with pytest.raises(InvalidInput) as unknown:
        tokens.create("x", Role.EDITOR, workspaces=["fraud", "growth"])
    assert unknown.value.field == "workspaces" and "'growth'" in unknown.value.message
    assert "x" not in [t.name for t in tokens.list()]
    for bad in ([], "fraud", ["Fraud"], [1]):
        with pytest.raises(InvalidInput) as info:
            check_grants(bad)
        assert info.value.field == "workspaces"


def test_existing_admin_tokens_keep_the_platform_after_the_migration(db: Database) -> None:
    """Before workspaces, an admin administered the whole platform and every other role
    held in the one team there was: the migration keeps exactly that."""
    downgrade(db, "0014")
    with db.engine.begin() as conn:
        for token_id, role in (("a1", "admin"), ("e1", "editor")):
            conn.execute(
                text(
                    "INSERT INTO slipway_api_tokens (id, name, role, secret_hash, created_at,"
                    " created_by, invoke) VALUES (:id, :id, :role, 'x', CURRENT_TIMESTAMP,"
                    " 't', '[]')"
                ),
                {"id": token_id, "role": role},
            )
    upgrade(db)
    grants = {t.id: t.workspaces for t in TokenService(db).list()}
    assert grants == {"a1": ["*"], "e1": [DEFAULT_WORKSPACE]}
    assert [w.name for w in WorkspaceService(db).list()] == [DEFAULT_WORKSPACE]


def test_the_artifact_root_is_partitioned_by_workspace() -> None:
    """Which workspace an artifact key belongs to, as the confinement checks read it."""
    assert key_workspace("jobs/fit/model") == DEFAULT_WORKSPACE
    assert key_workspace("mlflow/3/abc/artifacts/model") == DEFAULT_WORKSPACE
    assert key_workspace("mlflow/workspaces/default/3/abc") == DEFAULT_WORKSPACE
    assert key_workspace("workspaces/fraud/jobs/fit/model") == "fraud"
    assert key_workspace("mlflow/workspaces/fraud/7/abc/artifacts") == "fraud"
    assert key_workspace("workspaces/fraud") == "fraud"
    # The folders that hold other workspaces' files are every workspace's.
    for holder in ("", "mlflow", "workspaces", "mlflow/workspaces", "/workspaces/"):
        assert key_workspace(holder) == ALL_WORKSPACES
    check_key_workspace("workspaces/fraud/x", "fraud", field="source")
    with pytest.raises(InvalidInput) as refused:
        check_key_workspace("workspaces/fraud/x", DEFAULT_WORKSPACE, field="output")
    assert refused.value.field == "output" and refused.value.details["owner"] == "fraud"
