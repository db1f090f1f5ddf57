"""`slipway pipelines` end to end with a real worker process."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from tests.pipelines.test_recovery import _env, _worker


@pytest.mark.slow
def test_register_run_describe_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    for key, value in _env(home).items():
        if key.startswith("SLIPWAY_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    registered = runner.invoke(app, ["pipelines", "register", "tests.pipelines.sample:fan"])
    assert registered.exit_code == 0, registered.output
    assert "7 steps, 2 conditions" in registered.stdout
    worker = _worker(home, "cli-worker")
    try:
        ran = runner.invoke(app, ["pipelines", "run", "fan", "-p", "n=3", "--wait"])
        assert ran.exit_code == 0, ran.output
        assert "Succeeded" in ran.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    listed = json.loads(runner.invoke(app, ["pipelines", "executions", "-o", "json"]).stdout)
    run = listed[0]["id"]
    assert listed[0]["state"] == "Succeeded"
    described = json.loads(runner.invoke(app, ["pipelines", "describe", run, "-o", "json"]).stdout)
    assert {s["name"]: s["state"] for s in described["steps"]}["publish_2"] == "Skipped"
    logs = runner.invoke(app, ["pipelines", "logs", run, "--step", "numbers", "--follow"])
    assert "[numbers#1] making 3 numbers" in logs.stdout
    bad = runner.invoke(app, ["pipelines", "run", "fan", "-p", "n"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["pipelines", "run", "nope"])
    assert missing.exit_code == 1 and "not registered" in missing.output
