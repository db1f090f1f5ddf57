"""The registry through REST and the CLI (embedded SQLite; engines are covered elsewhere)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from slipway.api.app import create_app
from slipway.cli.main import app as cli
from slipway.services import Services


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def test_rest_register_approve_alias_compare(
    services: Services, log_model: Callable[..., str]
) -> None:
    client = TestClient(create_app(services))
    runs = [log_model(c=c) for c in (0.5, 2.0)]
    for run_id in runs:
        created = client.post(
            "/api/v1/models/delay/versions",
            json={"source": f"runs:/{run_id}/model", "lineage": {"pipeline": "train"}},
        )
        assert created.status_code == 201, created.text
    assert created.json()["approval_status"] == "PendingManualApproval"
    approved = client.post(
        "/api/v1/models/delay/versions/2/approval", json={"status": "Approved", "comment": "good"}
    )
    assert approved.json()["approval_status"] == "Approved"
    assert (
        client.put("/api/v1/models/delay/aliases/champion", json={"version": 2}).status_code == 200
    )
    assert client.get("/api/v1/models/delay/versions/champion").json()["version"] == 2
    compared = client.get("/api/v1/models/delay/compare?versions=1&versions=champion").json()
    assert compared["params"]["C"] == ["0.5", "2.0"]
    history = client.get("/api/v1/models/delay/versions/2/approvals").json()
    assert [h["to_status"] for h in history] == ["PendingManualApproval", "Approved"]
    assert client.get("/api/v1/models").json()[0]["approved"] == [2]
    bad = client.post("/api/v1/models/delay/versions", json={"source": "file:///etc/"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "source"
    assert client.get("/api/v1/models/nope/versions").status_code == 404
    assert (
        client.post(
            "/api/v1/models/delay/versions/1/approval", json={"status": "Maybe"}
        ).status_code
        == 400
    )
    audit = [e["action"] for e in client.get("/api/v1/audit").json()]
    assert "model.approved" in audit and "POST /api/v1/models/{name}/versions" in audit


def test_cli_models(
    services: Services,
    log_model: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLIPWAY_HOME", str(services.settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", services.settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    run_id = log_model()

    def ok(args: list[str]) -> str:
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "registered delay version 1" in ok(
        ["models", "register", "delay", f"runs:/{run_id}/model"]
    )
    assert "Approved" in ok(["models", "approve", "delay", "1", "-m", "looks good"])
    assert "delay@champion -> version 1" in ok(["models", "alias", "delay", "champion", "1"])
    versions = json.loads(ok(["models", "versions", "delay", "-o", "json"]))
    assert versions[0]["aliases"] == ["champion"]
    lineage = json.loads(ok(["models", "lineage", "delay", "champion", "-o", "json"]))
    assert lineage["run_id"] == run_id and lineage["approvals"][-1]["comment"] == "looks good"
    assert "model digest" in ok(["models", "lineage", "delay", "1"])
    assert "Rejected" in ok(["models", "reject", "delay", "1"])
    refused = runner.invoke(cli, ["models", "register", "delay", "../../x"])
    assert refused.exit_code == 2 and "refused" in refused.output
