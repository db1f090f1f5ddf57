"""`slipway features`: define from YAML, ingest a file with progress, read, query, delete."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from slipway.cli.main import app

runner = CliRunner()

SPEC = """
name: weather
record_identifiers: [{name: origin}]
event_time: time_hour
features:
  - {name: temp, type: float}
  - {name: wind, type: int}
description: hourly weather
"""


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("COLUMNS", "200")


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_feature_group_lifecycle(tmp_path: Path) -> None:
    spec = tmp_path / "weather.yaml"
    spec.write_text(SPEC)
    assert "created feature group weather" in _ok(["features", "create", "-f", str(spec)])
    data = tmp_path / "weather.csv"
    pd.DataFrame(
        {
            "origin": ["JFK", "LGA", "JFK"],
            "time_hour": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T05:00:00Z"],
            "temp": [1.0, 2.0, 3.0],
            "wind": [4, 5, 6],
        }
    ).to_csv(data, index=False)
    assert "ingested 3 rows" in _ok(["features", "ingest", "weather", str(data)])
    listed = json.loads(_ok(["features", "list", "-o", "json"]))
    assert [g["name"] for g in listed] == ["weather"]
    got = json.loads(_ok(["features", "get", "weather", "JFK", "NOPE", "-o", "json"]))
    assert got[0]["temp"] == 3.0 and got[1]["event_time"] is None
    rows = json.loads(_ok(["features", "query", "SELECT count(*) AS n FROM weather", "-o", "json"]))
    assert rows == [{"n": 3}]
    described = json.loads(_ok(["features", "describe", "weather", "-o", "json"]))
    assert described["offline_version"] == 0 and described["ingests"][0]["rows"] == 3
    assert "weather" in _ok(["features", "describe", "weather"])
    assert "materialized 2 records" in _ok(["features", "materialize", "weather"])
    assert "deleted 1 online" in _ok(["features", "delete-records", "weather", "LGA"])
    bad = tmp_path / "bad.csv"
    bad.write_text("origin,time_hour,temp,wind\nJFK,2024-01-02T00:00:00Z,hot,1\n")
    failed = runner.invoke(app, ["features", "ingest", "weather", str(bad)])
    assert failed.exit_code == 2 and "temp" in failed.output
    assert "deleted weather" in _ok(["features", "delete", "weather", "--yes"])
    missing = runner.invoke(app, ["features", "describe", "weather"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
