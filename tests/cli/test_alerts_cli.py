"""`slipway alerts`: channels, rules, fired alerts and test notifications, embedded on both
engines, with a real local HTTP server as the webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.events.receivers import WebhookServer, webhook_server

runner = CliRunner()


@pytest.fixture
def services(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """The platform the CLI opens too (same home, database and allow-list)."""
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", database_url)
    monkeypatch.setenv("SLIPWAY_ALERTS__ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("COLUMNS", "200")
    opened = Services.open(load_settings())
    yield opened
    opened.close()


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _fails(args: list[str], code: int = 1) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return result.output


def test_every_command_has_help() -> None:
    assert "channels" in _ok(["alerts", "--help"])
    for group, commands in {
        "channels": ("create", "list", "describe", "delete", "test"),
        "rules": ("create", "list", "describe", "enable", "disable", "delete"),
    }.items():
        for command in commands:
            assert "Usage" in _ok(["alerts", group, command, "--help"])
    for command in ("list", "describe"):
        assert "Usage" in _ok(["alerts", command, "--help"])


def test_channels_rules_and_fired_alerts(
    services: Services, hook: WebhookServer, tmp_path: Path
) -> None:
    made = json.loads(
        _ok(
            [
                "alerts",
                "channels",
                "create",
                "ops",
                "--kind",
                "webhook",
                "--url",
                hook.url(),
                "--format",
                "slack",
                "-o",
                "json",
            ]
        )
    )
    assert made["config"] == {"url": f"http://127.0.0.1:{hook.port}/***", "format": "slack"}
    _ok(["alerts", "channels", "create", "audit-log", "--kind", "log"])
    listed = json.loads(_ok(["alerts", "channels", "list", "-o", "json"]))
    assert [c["name"] for c in listed] == ["audit-log", "ops"]

    rule = json.loads(
        _ok(
            [
                "alerts",
                "rules",
                "create",
                "drift",
                "--event",
                "monitor.violations",
                "--channel",
                "ops",
                "--channel",
                "audit-log",
                "--filter",
                "payload.violations=3",
                "--cooldown",
                "0",
                "--severity",
                "critical",
                "-o",
                "json",
            ]
        )
    )
    assert rule["filters"] == {"payload.violations": 3} and rule["cooldown_seconds"] == 0
    spec = tmp_path / "rule.yaml"
    spec.write_text("name: failures\nevent_types: ['*.job_failed']\nchannels: [audit-log]\n")
    assert "failures" in _ok(["alerts", "rules", "create", "-f", str(spec)])

    services.events.append("monitor.violations", "monitor/x", {"violations": 3})
    services.events.append("monitor.violations", "monitor/y", {"violations": 1})
    services.alerts.process()

    [fired] = json.loads(_ok(["alerts", "list", "-o", "json"]))
    assert fired["resource"] == "monitor/x" and fired["severity"] == "critical"
    assert {d["channel"]: d["state"] for d in fired["deliveries"]} == {
        "ops": "delivered",
        "audit-log": "delivered",
    }
    assert hook.requests[0].json()["text"].startswith("[CRITICAL] drift")
    table = _ok(["alerts", "list"])
    assert "drift" in table and "delivered" in table
    detail = _ok(["alerts", "describe", str(fired["id"])])
    assert "ops: delivered after 1 attempt(s)" in detail
    assert (
        json.loads(_ok(["alerts", "describe", str(fired["id"]), "-o", "json"]))["id"]
        == (fired["id"])
    )

    assert "delivered to ops (200)" in _ok(["alerts", "channels", "test", "ops"])
    _ok(["alerts", "rules", "disable", "drift"])
    assert json.loads(_ok(["alerts", "rules", "describe", "drift", "-o", "json"]))["enabled"] is (
        False
    )
    assert "is used by rule(s) drift" in _fails(["alerts", "channels", "delete", "ops"])
    _ok(["alerts", "rules", "delete", "drift"])
    _ok(["alerts", "channels", "delete", "ops"])
    assert "drift" not in _ok(["alerts", "rules", "list"])


def test_a_failing_test_notification_exits_1(services: Services, hook: WebhookServer) -> None:
    _ok(["alerts", "channels", "create", "ops", "--kind", "webhook", "--url", hook.url()])
    hook.replies = [(500, {})]
    assert "answered 500" in _fails(["alerts", "channels", "test", "ops"])


def test_bad_input_exits_2_naming_the_problem(services: Services) -> None:
    out = _fails(
        [
            "alerts",
            "channels",
            "create",
            "evil",
            "--kind",
            "webhook",
            "--url",
            "http://169.254.169.254/latest/meta-data/",
        ],
        code=2,
    )
    assert "cloud metadata address" in out
    assert "must be one of" in _fails(["alerts", "channels", "create", "x", "--kind", "sms"], 2)
    assert "does not exist" in _fails(
        ["alerts", "rules", "create", "r", "--event", "x.y", "--channel", "nope"], code=2
    )
    assert "path=value" in _fails(
        ["alerts", "rules", "create", "r", "--event", "x.y", "--channel", "a", "--filter", "z"],
        code=2,
    )
    assert "does not exist" in _fails(["alerts", "describe", "999"])
    assert json.loads(_ok(["alerts", "channels", "list", "-o", "json"])) == []
