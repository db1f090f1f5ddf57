"""Jobs, tuning jobs, schedules and triggers over REST and the CLI: wiring and bad input;
schedules and triggers updated in place over REST."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from slipway.cli.main import app as cli
from slipway.services import Services
from tests.api.conftest import bearer
from tests.pipelines import sample


def test_jobs_and_schedules_over_rest(
    client: TestClient, services: Services, tokens: dict[str, str]
) -> None:
    editor = bearer(tokens["editor"])
    job = client.post(
        "/api/v1/jobs", json={"name": "j1", "module": "slipway.steps.nothing"}, headers=editor
    )
    assert job.status_code == 201 and job.json()["state"] == "Pending"
    assert client.get("/api/v1/jobs/j1", headers=editor).json()["name"] == "j1"
    assert client.post("/api/v1/jobs/j1/stop", headers=editor).status_code == 202
    assert client.get("/api/v1/jobs/j1", headers=editor).json()["state"] == "Stopped"
    bad = client.post("/api/v1/jobs", json={"name": "j2"}, headers=editor)
    assert bad.status_code == 400
    assert client.get("/api/v1/jobs/none", headers=editor).status_code == 404

    services.pipelines.register(sample.fan)
    created = client.post(
        "/api/v1/schedules",
        headers=editor,
        json={
            "name": "nightly",
            "pipeline": "fan",
            "cron": "0 2 * * *",
            "timezone": "Europe/Paris",
        },
    )
    assert created.status_code == 201, created.text
    assert client.post("/api/v1/schedules/nightly/disable", headers=editor).status_code == 202
    assert client.get("/api/v1/schedules", headers=editor).json()[0]["enabled"] is False
    bad_cron = client.post(
        "/api/v1/schedules", headers=editor, json={"name": "x", "pipeline": "fan", "cron": "nope"}
    )
    assert bad_cron.status_code == 400 and bad_cron.json()["error"]["details"]["field"] == "cron"
    trigger = client.post(
        "/api/v1/triggers",
        headers=editor,
        json={
            "name": "on-drift",
            "pipeline": "fan",
            "event_type": "monitor.drift_detected",
            "debounce_seconds": 60,
        },
    )
    assert trigger.status_code == 201
    assert client.get("/api/v1/triggers", headers=editor).json()[0]["fired"] == 0
    assert client.delete("/api/v1/triggers/on-drift", headers=editor).status_code == 204
    tuning = client.post(
        "/api/v1/tuning-jobs",
        headers=editor,
        json={"name": "t", "trial": "x:y", "parameter_ranges": {}},
    )
    assert tuning.status_code == 400


def test_schedule_and_trigger_cli(
    services: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLIPWAY_HOME", str(services.settings.home))
    monkeypatch.setenv("COLUMNS", "200")
    services.pipelines.register(sample.fan)
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["schedules", "create", "hourly", "--pipeline", "fan", "--cron", "0 * * * *", "-p", "n=3"],
    )
    assert made.exit_code == 0, made.output
    listed = json.loads(runner.invoke(cli, ["schedules", "list", "-o", "json"]).stdout)
    assert listed[0]["cron"] == "0 * * * *"
    made = runner.invoke(
        cli,
        [
            "triggers",
            "create",
            "on-ingest",
            "--pipeline",
            "fan",
            "--event",
            "feature_group.ingested",
            "--map",
            "n=payload.rows",
            "--debounce",
            "30",
        ],
    )
    assert made.exit_code == 0, made.output
    listed = json.loads(runner.invoke(cli, ["triggers", "list", "-o", "json"]).stdout)
    assert listed[0]["debounce_seconds"] == 30.0
    assert listed[0]["event_type"] == "feature_group.ingested"
    assert runner.invoke(cli, ["triggers", "disable", "on-ingest"]).exit_code == 0
    listed = json.loads(runner.invoke(cli, ["triggers", "list", "-o", "json"]).stdout)
    assert listed[0]["enabled"] is False
    bad = runner.invoke(
        cli, ["triggers", "create", "x", "--pipeline", "fan", "--event", "e", "--map", "broken"]
    )
    assert bad.exit_code == 2


def test_schedules_and_triggers_are_updated_over_rest(
    client: TestClient, services: Services, tokens: dict[str, str]
) -> None:
    editor, viewer = bearer(tokens["editor"]), bearer(tokens["viewer"])
    services.pipelines.register(sample.fan)
    services.pipelines.register(sample.retrying)
    schedule = {"name": "nightly", "pipeline": "fan", "cron": "0 2 * * *"}
    assert client.post("/api/v1/schedules", json=schedule, headers=editor).status_code == 201
    client.post("/api/v1/schedules/nightly/disable", headers=editor)
    # The name may be left out (the path's) or repeated.
    for body in (
        {"pipeline": "retrying", "cron": "0 3 * * *", "parameters": {"failures": 0}},
        schedule | {"pipeline": "retrying", "cron": "0 3 * * *", "parameters": {"failures": 0}},
    ):
        updated = client.put("/api/v1/schedules/nightly", json=body, headers=editor)
        assert updated.status_code == 200, updated.text
        assert {k: updated.json()[k] for k in ("name", "pipeline", "cron", "parameters")} == {
            "name": "nightly",
            "pipeline": "retrying",
            "cron": "0 3 * * *",
            "parameters": {"failures": 0},
        }
        assert updated.json()["enabled"] is False
    stored = client.get("/api/v1/schedules/nightly", headers=editor).json()
    assert stored == updated.json()

    trigger = {"name": "on-drift", "pipeline": "fan", "event_type": "monitor.violations"}
    assert client.post("/api/v1/triggers", json=trigger, headers=editor).status_code == 201
    changed = client.put(
        "/api/v1/triggers/on-drift",
        json={"pipeline": "retrying", "event_type": "x.done", "debounce_seconds": 60},
        headers=editor,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["pipeline"], changed.json()["event_type"]) == ("retrying", "x.done")
    assert (changed.json()["fired"], changed.json()["debounce_seconds"]) == (0, 60.0)
    assert client.get("/api/v1/triggers/on-drift", headers=editor).json() == changed.json()

    # Bad input is a 400 naming the field, an unknown name a 404, a viewer a 403: each
    # changes nothing.
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("schedules/nightly", schedule | {"cron": "every tuesday"}, "cron"),
        ("schedules/nightly", schedule | {"pipeline": "nowhere"}, "pipeline"),
        ("schedules/nightly", schedule | {"name": "daily"}, "name"),
        ("schedules/nightly", schedule | {"catchup": "sometimes"}, "catchup"),
        ("schedules/nightly", {"pipeline": "fan"}, "cron"),
        ("triggers/on-drift", trigger | {"pipeline": "nowhere"}, "pipeline"),
        ("triggers/on-drift", trigger | {"name": "on-other"}, "name"),
        ("triggers/on-drift", trigger | {"debounce_seconds": -1}, "debounce_seconds"),
        ("triggers/on-drift", trigger | {"colour": "red"}, "colour"),
    ]
    for path, body, field in bad:
        answer = client.put(f"/api/v1/{path}", json=body, headers=editor)
        assert answer.status_code == 400, (path, body, answer.text)
        assert answer.json()["error"]["details"]["field"] == field, (path, body, answer.text)
    for path, body in (("schedules/nobody", schedule), ("triggers/nobody", trigger)):
        missing = client.put(f"/api/v1/{path}", json=body | {"name": "nobody"}, headers=editor)
        assert missing.status_code == 404, missing.text
        assert client.put(f"/api/v1/{path}", json=body, headers=viewer).status_code == 403
    assert client.get("/api/v1/schedules/nightly", headers=editor).json() == stored
    assert client.get("/api/v1/triggers/on-drift", headers=editor).json() == changed.json()
    assert [s["name"] for s in client.get("/api/v1/schedules", headers=editor).json()] == [
        "nightly"
    ]
    updates = services.audit.list(action=".update", limit=10)
    assert sorted((e.action, e.resource) for e in updates if e.outcome == "success") == [
        ("schedule.update", "schedule/nightly"),
        ("schedule.update", "schedule/nightly"),
        ("trigger.update", "trigger/on-drift"),
    ]
