"""`slipway endpoints`: create from YAML, list, describe, history, update, roll back,
wait and delete, embedded on both engines with real registered models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.clock import utcnow
from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.serving.tables import GatewayModelRow, GatewayRow
from tests.registry.logged import register_classifier

runner = CliRunner()

SPEC = """
name: churn
description: who leaves
variants:
  - name: main
    model: {model}
    weight: 3
  - name: side
    model: {model}
    weight: 1
shadow_variants:
  - name: shadow
    model: {model}
    sampling_percent: 20
"""


@pytest.fixture
def services(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """The platform the CLI opens too (same home and database)."""
    settings = load_settings(home=tmp_path / "home", database={"url": database_url})
    opened = Services.open(settings)
    monkeypatch.setenv("SLIPWAY_HOME", str(settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    yield opened
    opened.close()


def _spec(tmp_path: Path, model: str = "churn:1") -> str:
    path = tmp_path / f"churn-{model.replace(':', '-')}.yaml"
    path.write_text(SPEC.format(model=model))
    return str(path)


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _fails(args: list[str], code: int = 1) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return result.output


def _gateway_reports(services: Services, version: int, state: str, error: str = "") -> None:
    """What a live gateway writes once it has tried to load a config (no gateway runs
    here): its heartbeat and the config's load state."""
    now = utcnow()
    with services.db.write() as session:
        gateway = session.get(GatewayRow, "g1") or GatewayRow(
            gateway_id="g1", host="test", pid=1, started_at=now, in_flight=0
        )
        gateway.heartbeat_at = gateway.refreshed_at = now
        session.add(gateway)
        session.add(
            GatewayModelRow(
                gateway_id="g1",
                endpoint="churn",
                config_version=version,
                state=state,
                error=error,
                updated_at=now,
            )
        )


def test_every_command_has_help() -> None:
    assert "rollback" in _ok(["endpoints", "--help"])
    for command in ("create", "update", "describe", "list", "history", "rollback", "delete"):
        assert "Usage" in _ok(["endpoints", command, "--help"])
    assert "--timeout" in _ok(["endpoints", "wait", "--help"])


def test_lifecycle_without_a_gateway(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(services, monkeypatch, "churn")
    spec = _spec(tmp_path)
    created = _ok(["endpoints", "create", spec])
    assert "created endpoint churn" in created and "Creating" in created

    listed = _ok(["endpoints", "list"])
    assert "churn" in listed and "Creating" in listed
    rows = json.loads(_ok(["endpoints", "list", "-o", "json"]))
    assert [(r["name"], r["status"], r["target_version"]) for r in rows] == [
        ("churn", "Creating", 1)
    ]
    table = _ok(["endpoints", "describe", "churn"])
    for text in ("waiting for gateways", "main", "side", "shadow", "churn:1", "75%", "25%"):
        assert text in table, text
    assert "mirrors 20%" in table
    assert "traffic: config 1 100%; by variant: main 75%, side 25%" in table
    described = json.loads(_ok(["endpoints", "describe", "churn", "-o", "json"]))
    assert described["status"] == "Creating" and described["target_version"] == 1
    assert described["target"]["spec"]["description"] == "who leaves"
    history = _ok(["endpoints", "history", "churn"])
    assert "pending" in history and "main=churn:1 w3" in history
    configs = json.loads(_ok(["endpoints", "history", "churn", "-o", "json"]))
    assert [(c["version"], c["outcome"]) for c in configs] == [(1, "pending")]

    assert "wait until it is InService" in _fails(["endpoints", "update", spec])
    assert "wait until it is InService" in _fails(["endpoints", "rollback", "churn"])
    assert "already exists" in _fails(["endpoints", "create", spec])
    timed_out = _fails(["endpoints", "wait", "churn", "--timeout", "0"])
    assert "churn: Creating (config 1 at 100%)" in timed_out and "still Creating" in timed_out

    assert "deleting churn" in _ok(["endpoints", "delete", "churn", "--yes"])
    described = json.loads(_ok(["endpoints", "describe", "churn", "-o", "json"]))
    assert described["status"] == "Deleting"
    assert "is Deleting" in _fails(["endpoints", "wait", "churn"])
    assert "does not exist" in _fails(["endpoints", "describe", "nope"])
    assert "does not exist" in _fails(["endpoints", "history", "nope"])


def test_wait_follows_what_the_gateway_reports(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):
        register_classifier(services, monkeypatch, "churn")
    _ok(["endpoints", "create", _spec(tmp_path)])
    _gateway_reports(services, 1, "ready")
    services.deployments.tick()
    assert "churn is InService with config 1" in _ok(["endpoints", "wait", "churn"])
    table = _ok(["endpoints", "describe", "churn"])
    assert "active config 1, target config -" in table and "g1" in table

    assert "updating endpoint churn" in _ok(["endpoints", "update", _spec(tmp_path, "churn:2")])
    _gateway_reports(services, 2, "failed", "out of memory")
    services.deployments.tick()
    failed = _fails(["endpoints", "wait", "churn", "-o", "json"])
    assert "config 2 failed" in failed and "out of memory" in failed
    history = _ok(["endpoints", "history", "churn"])
    assert "deployed" in history and "failed" in history

    rolled = json.loads(_ok(["endpoints", "rollback", "churn", "--to-version", "1", "-o", "json"]))
    assert rolled["status"] == "Updating" and rolled["target_version"] == 3
    last = json.loads(_ok(["endpoints", "history", "churn", "-o", "json"]))[-1]
    assert last["rollback_of"] == 1 and last["spec"]["variants"][0]["model"] == "churn:1"


def test_bad_files_and_specs_exit_2_saying_why(services: Services, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: churn\nvariants: [\n")
    assert "cannot read" in _fails(["endpoints", "create", str(broken)], 2)
    listing = tmp_path / "list.yaml"
    listing.write_text("- name: churn\n")
    assert "must hold one mapping" in _fails(["endpoints", "create", str(listing)], 2)
    assert "cannot read" in _fails(["endpoints", "create", str(tmp_path / "missing.yaml")], 2)
    negative = tmp_path / "negative.yaml"
    negative.write_text("name: churn\nvariants: [{name: main, model: 'churn:1', weight: -1}]\n")
    assert "variants.0.weight" in _fails(["endpoints", "create", str(negative)], 2)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("name: churn\nreplicas: 2\nvariants: [{name: main, model: 'churn:1'}]\n")
    assert "replicas" in _fails(["endpoints", "update", str(unknown)], 2)
    assert json.loads(_ok(["endpoints", "list", "-o", "json"])) == []
    assert "churn" in _fails(["endpoints", "create", _spec(tmp_path)], 1)  # no such model
