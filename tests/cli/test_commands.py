"""The command line: version, config, db, tokens, audit, doctor."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway import __version__
from slipway.cli.main import app
from slipway.core.clock import utcnow
from slipway.core.db import head_revision
from tests.conftest import service_url

runner = CliRunner()


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "ws"


def _json(args: list[str]) -> object:
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_version_and_help() -> None:
    assert runner.invoke(app, ["version"]).stdout.strip() == __version__
    for args in (["--help"], ["up", "--help"], ["tokens", "create", "--help"], ["db", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.stdout


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", "postgresql://u:topsecret@db/meta")
    shown = _json(["config", "show"])
    assert isinstance(shown, dict)
    assert shown["database"]["url"] == "postgresql://u:***@db/meta"
    text = runner.invoke(app, ["config", "show"]).stdout
    assert "topsecret" not in text and "u:***@db" in text


def test_config_show_reports_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_SERVER__PORT", "x")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "server.port" in result.output


def test_db_upgrade_and_current() -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"empty -> {head_revision()}" in result.stdout
    assert f"current: {head_revision()}" in runner.invoke(app, ["db", "current"]).stdout


def test_tokens_create_list_revoke_and_audit() -> None:
    created = _json(["tokens", "create", "deployer", "--role", "editor"])
    assert isinstance(created, dict) and created["token"].startswith("slw_")
    listed = _json(["tokens", "list"])
    assert isinstance(listed, list)
    assert [(t["name"], t["role"], t["revoked_at"]) for t in listed] == [
        ("deployer", "editor", None)
    ]
    assert "token" not in listed[0]
    assert runner.invoke(app, ["tokens", "revoke", "deployer"]).exit_code == 0
    again = runner.invoke(app, ["tokens", "revoke", "deployer"])
    assert again.exit_code == 1 and "no active token" in again.output
    bad = runner.invoke(app, ["tokens", "create", "Bad Name"])
    assert bad.exit_code == 2 and "not a valid name" in bad.output
    audit = _json(["audit"])
    assert isinstance(audit, list)
    assert [e["action"] for e in audit] == ["tokens.revoke", "tokens.create"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.redis
def test_doctor_with_redis_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_ONLINE_STORE__URL", service_url("redis"))
    result = runner.invoke(app, ["doctor", "--output", "json"])
    assert result.exit_code == 0, result.output
    checks = {c["backend"]: c for c in json.loads(result.stdout)}
    assert checks["online store"]["status"] == "ok"
    assert checks["online store"]["detail"].startswith("redis ")
    assert checks["database"]["status"] == "ok"
    assert checks["artifacts"]["status"] == "ok"
    assert checks["kafka"]["status"] == "not configured"
    table = runner.invoke(app, ["doctor"]).stdout
    assert "online store" in table and "redis" in table


def test_doctor_with_redis_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_ONLINE_STORE__URL", f"redis://127.0.0.1:{_closed_port()}/0")
    monkeypatch.setenv("SLIPWAY_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{_closed_port()}")
    result = runner.invoke(app, ["doctor", "--output", "json"])
    assert result.exit_code == 1
    checks = {c["backend"]: c for c in json.loads(result.stdout)}
    assert checks["online store"]["status"] == "unreachable"
    assert "Connection" in checks["online store"]["detail"]
    assert checks["kafka"]["status"] == "unreachable"
    assert checks["database"]["status"] == "ok"
    table = runner.invoke(app, ["doctor"])
    assert table.exit_code == 1 and "unreachable" in table.stdout


def test_tokens_expires_in_and_rotate() -> None:
    created = _json(["tokens", "create", "ci", "--role", "editor", "--expires-in", "30d"])
    assert isinstance(created, dict)
    expires = datetime.fromisoformat(created["expires_at"])
    assert expires - datetime.fromisoformat(created["created_at"]) == timedelta(days=30)
    rotated = _json(["tokens", "rotate", "ci"])
    assert isinstance(rotated, dict)
    assert (rotated["id"], rotated["name"], rotated["role"]) == (created["id"], "ci", "editor")
    assert rotated["token"] != created["token"]
    assert rotated["expires_at"] == created["expires_at"]  # kept without --expires-in
    shorter = runner.invoke(app, ["tokens", "rotate", created["id"], "--expires-in", "12h"])
    assert shorter.exit_code == 0, shorter.output
    assert "secret (shown only now)" in shorter.stdout and "expires" in shorter.stdout
    listed = _json(["tokens", "list"])
    assert isinstance(listed, list)
    [token] = listed
    assert timedelta(hours=11) < datetime.fromisoformat(token["expires_at"]) - utcnow()
    for bad in ("30", "1w", "-5m", "0s", "3651d"):
        refused = runner.invoke(app, ["tokens", "create", f"bad-{len(bad)}", "--expires-in", bad])
        assert refused.exit_code == 2 and "expires" in refused.output, (bad, refused.output)
    assert runner.invoke(app, ["tokens", "rotate", "no-such-token"]).exit_code == 1
    audit = _json(["audit"])
    assert isinstance(audit, list)
    assert [e["action"] for e in audit] == ["tokens.rotate", "tokens.rotate", "tokens.create"]


def test_tokens_invoke_grants() -> None:
    created = _json(["tokens", "create", "svc", "--invoke", "churn", "--invoke", "fraud"])
    assert isinstance(created, dict) and created["invoke"] == ["churn", "fraud"]
    granted = runner.invoke(app, ["tokens", "invoke", "svc", "*"])
    assert granted.exit_code == 0, granted.output
    assert "may invoke: *" in granted.stdout
    cleared = runner.invoke(app, ["tokens", "invoke", created["id"]])
    assert cleared.exit_code == 0 and "no endpoint" in cleared.stdout
    refused = runner.invoke(app, ["tokens", "invoke", "svc", "Bad Name"])
    assert refused.exit_code != 0 and "invoke" in refused.output
    listed = _json(["tokens", "list"])
    assert isinstance(listed, list) and listed[0]["invoke"] == []
    audit = _json(["audit"])
    assert isinstance(audit, list)
    assert [e["action"] for e in audit] == ["tokens.invoke", "tokens.invoke", "tokens.create"]
