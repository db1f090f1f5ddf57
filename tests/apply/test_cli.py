"""``slipway plan`` / ``apply`` / ``export`` in process: exit codes CI can gate on (0 no
changes, 2 changes, 1 an error), the table and the JSON, and problems listed with file,
line and field and nothing applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from tests.apply.conftest import write

runner = CliRunner()

SPECS = """
kind: AlertChannel
name: ops-log
type: log
---
kind: AlertRule
name: drift
event_types: [monitor.violations]
channels: [ops-log]
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("COLUMNS", "200")
    return {"SLIPWAY_HOME": str(tmp_path / "home"), "SLIPWAY_URL": ""}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_plan_apply_plan_exit_codes_and_output(specs: Path, env: dict[str, str]) -> None:
    write(specs, "alerts.yaml", SPECS)
    code, output = run(env, "plan", str(specs))
    assert code == 2, output
    assert "create │ AlertChannel │ ops-log" in output
    assert "2 to create, 0 to update, 0 to delete, 0 unchanged" in output

    code, output = run(env, "apply", str(specs))
    assert code == 0, output
    assert "create AlertRule drift: done" in output and "applied: 2 change(s)" in output

    code, output = run(env, "plan", str(specs))
    assert (code, output.strip()) == (
        0,
        "No changes: the platform matches spec set ops (2 resources).",
    )

    write(specs, "alerts.yaml", SPECS + "severity: critical\n")
    code, output = run(env, "plan", str(specs), "--json")
    assert code == 2
    document = json.loads(output)
    assert document["has_changes"] is True and document["spec_set"] == "ops"
    [update] = [c for c in document["changes"] if c["action"] == "update"]
    assert update["kind"] == "AlertRule" and update["fields"] == [
        {"path": "severity", "old": "warning", "new": "critical"}
    ]
    code, output = run(env, "plan", str(specs), "--all")
    assert "severity: warning → critical" in output and "unchanged" in output


def test_problems_exit_1_and_nothing_is_applied(specs: Path, env: dict[str, str]) -> None:
    write(specs, "alerts.yaml", SPECS.replace("[ops-log]", "[ops-log, pager]"))
    write(specs, "bad.yaml", "kind: Monitor\nname: m\nendpoint: e\ntype: data_quality\n")
    code, output = run(env, "apply", str(specs))
    assert code == 1
    assert "problem(s) in the spec files; nothing applied" in output
    assert "bad.yaml:1: Value error, a data_quality monitor needs a baseline" in output
    code, output = run(env, "plan", str(specs.parent / "elsewhere"))
    assert code == 1 and "does not exist" in output
    write(specs, "bad.yaml", "kind: AlertChannel\nname: x\ntype: log\n")
    code, output = run(env, "apply", str(specs))
    assert code == 1
    assert "alerts.yaml:8: channels.1: AlertChannel 'pager' is neither declared" in output
    code, output = run(env, "alerts", "channels", "list", "-o", "json")
    assert code == 0 and json.loads(output) == []


def test_export_writes_specs_that_plan_as_unchanged(
    specs: Path, env: dict[str, str], tmp_path: Path
) -> None:
    write(specs, "alerts.yaml", SPECS)
    assert run(env, "apply", str(specs))[0] == 0
    out = tmp_path / "exported"
    code, output = run(env, "export", str(out), "--spec-set", "ops")
    assert code == 0, output
    assert (out / "alert-rules.yaml").read_text().startswith("kind: AlertRule\nname: drift\n")
    code, output = run(env, "plan", str(out))
    assert code == 0, output
