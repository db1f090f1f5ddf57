"""`slipway batch`: submit from YAML, list, describe, chunks, wait, stop and resume,
embedded on both engines with a real registered model. No worker runs, so jobs never
complete here; waiting is exercised on jobs that end Stopped, or time out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.registry.logged import register_classifier

runner = CliRunner()

# Paths relative to the spec file's folder, as a user would write them beside their data.
SPEC = """
name: {name}
model: churn:1
input:
  files:
    path: input.parquet
output:
  files:
    path: out
id_column: id
chunk_rows: {chunk_rows}
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


def _spec(tmp_path: Path, name: str = "score", chunk_rows: int = 1000) -> str:
    folder = tmp_path / "job"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"id": np.arange(2500), "a": rng.normal(size=2500)})
    frame["b"] = rng.normal(size=2500)
    frame.to_parquet(folder / "input.parquet", row_group_size=1000)
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, chunk_rows=chunk_rows))
    return str(path)


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _fails(args: list[str], code: int = 1) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return result.output


def test_every_command_has_help() -> None:
    assert "resume" in _ok(["batch", "--help"])
    for command in ("submit", "describe", "list", "chunks", "wait", "stop", "resume"):
        assert "Usage" in _ok(["batch", command, "--help"])
    assert "--wait" in _ok(["batch", "submit", "--help"])
    assert "--timeout" in _ok(["batch", "wait", "--help"])


def test_lifecycle_without_a_worker(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(services, monkeypatch, "churn")
    submitted = _ok(["batch", "submit", "-f", _spec(tmp_path)])
    assert "submitted batch job score" in submitted and "3 chunks" in submitted
    job = services.batch.get("score")
    assert job.spec.input.files.path == str(tmp_path / "job" / "input.parquet")
    assert job.created_by.startswith("cli:")

    listed = _ok(["batch", "list"])
    assert "score" in listed and "Pending" in listed and "churn:1" in listed and "0/3" in listed
    rows = json.loads(_ok(["batch", "list", "-o", "json"]))
    assert [(r["name"], r["state"], r["chunks_total"]) for r in rows] == [("score", "Pending", 3)]
    described = json.loads(_ok(["batch", "describe", "score", "-o", "json"]))
    assert described["state"] == "Pending" and described["chunk_states"] == {"pending": 3}
    assert described["model_name"] == "churn" and described["model_version"] == 1
    assert "0/3 chunks" in _ok(["batch", "describe", "score"])
    chunks = json.loads(_ok(["batch", "chunks", "score", "-o", "json"]))
    assert [(c["index"], c["state"], c["source"]["rows"]) for c in chunks] == [
        (0, "pending", 1000),
        (1, "pending", 1000),
        (2, "pending", 500),
    ]
    assert "input.parquet" in _ok(["batch", "chunks", "score"])

    timed_out = _fails(["batch", "wait", "score", "--timeout", "0"])
    assert "still Pending" in timed_out

    assert "stopped score" in _ok(["batch", "stop", "score"])
    assert services.batch.get("score").state == "Stopped"
    _fails(["batch", "stop", "score"])  # already Stopped: a conflict
    ended = _fails(["batch", "wait", "score", "-o", "json"])
    assert "batch job score ended Stopped" in ended

    resumed = json.loads(_ok(["batch", "resume", "score", "-o", "json"]))
    assert resumed["state"] == "Running"
    assert [c.state for c in services.batch.chunks("score")] == ["pending"] * 3
    _fails(["batch", "resume", "score"])  # Running jobs do not resume

    for command in ("describe", "chunks", "stop", "resume"):
        _fails(["batch", command, "nobody"])


def test_submit_and_wait_fails_when_the_job_is_stopped(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--wait`` follows the job; one that ends other than Completed exits 1 saying so."""
    register_classifier(services, monkeypatch, "churn")
    spec = _spec(tmp_path, name="waited")
    result = runner.invoke(app, ["batch", "submit", "-f", spec, "--wait", "--timeout", "0.2"])
    assert result.exit_code == 1 and "still Pending" in result.output, result.output
    services.batch.stop("waited")
    stopped = _fails(["batch", "wait", "waited"])
    assert "batch job waited ended Stopped" in stopped


def test_a_bad_spec_exits_2_and_stores_nothing(services: Services, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert "cannot read" in _fails(["batch", "submit", "-f", str(broken)], code=2)
    listed = tmp_path / "list.yaml"
    listed.write_text("- name: score\n")
    assert "one mapping" in _fails(["batch", "submit", "-f", str(listed)], code=2)
    _fails(["batch", "submit", "-f", str(tmp_path / "absent.yaml")], code=2)

    small = _fails(["batch", "submit", "-f", _spec(tmp_path, chunk_rows=5)], code=2)
    assert "chunk_rows" in small
    unknown = _fails(["batch", "submit", "-f", _spec(tmp_path)], code=1)
    assert "model 'churn'" in unknown
    assert services.batch.list() == []
