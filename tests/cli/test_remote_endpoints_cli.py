"""``slipway endpoints`` and ``slipway batch`` as a client: against ``slipway up`` with a
token (``--url``), they print what they print in process on the same platform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from slipway.cli.main import app
from tests.client.models import registered
from tests.shared_platform import SharedPlatform

runner = CliRunner()


def _run(args: list[str], env: dict[str, str]) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def _same(shared: SharedPlatform, args: list[str]) -> str:
    """``args``' output in process on the platform's settings, checked equal to the output
    of the same command against its control plane."""
    local = _run(
        args,
        {
            "SLIPWAY_HOME": str(shared.home),
            "SLIPWAY_CONFIG": str(shared.home / "slipway.yaml"),
            "SLIPWAY_URL": "",
        },
    )
    remote = _run(["--url", shared.url, *args], {"SLIPWAY_TOKEN": shared.token})
    assert remote == local
    return local


@pytest.fixture
def shared(shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch) -> SharedPlatform:
    monkeypatch.setenv("COLUMNS", "250")
    return shared_platform


def test_endpoints_describe_and_history_are_the_same_remotely(
    shared: SharedPlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    version = registered(shared, monkeypatch, "cli-remote-clf")
    spec = tmp_path / "endpoint.yaml"
    name = "cli-remote"
    spec.write_text(
        yaml.safe_dump(
            {"name": name, "variants": [{"name": "main", "model": f"cli-remote-clf:{version}"}]}
        )
    )
    remote = {"SLIPWAY_TOKEN": shared.token}
    created = _run(["--url", shared.url, "endpoints", "create", str(spec)], remote)
    assert f"created endpoint {name}" in created
    shared.services.endpoints.wait(name, timeout=300)
    table = _same(shared, ["endpoints", "describe", name])
    assert "InService" in table and f"cli-remote-clf:{version}" in table
    described = json.loads(_same(shared, ["endpoints", "describe", name, "-o", "json"]))
    assert described["status"] == "InService" and described["active_version"] == 1
    history = json.loads(_same(shared, ["endpoints", "history", name, "-o", "json"]))
    assert [(c["version"], c["outcome"]) for c in history] == [(1, "deployed")]
    # Nothing invoked it, so the counts cannot move between the two runs.
    stats = json.loads(_same(shared, ["endpoints", "stats", name, "-o", "json"]))
    assert (stats["endpoint"], stats["variants"]) == (name, {})
    assert f"{name}: no traffic" in _same(shared, ["endpoints", "stats", name])


def test_batch_describe_and_chunks_are_the_same_remotely(
    shared: SharedPlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    version = registered(shared, monkeypatch, "cli-batch-clf")
    rng = np.random.default_rng(3)
    source = tmp_path / "input.parquet"
    frame = pd.DataFrame({"id": np.arange(2000)} | {c: rng.normal(size=2000) for c in "ab"})
    frame.to_parquet(source, row_group_size=1000)
    spec = tmp_path / "job.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "cli-remote-job",
                "model": f"cli-batch-clf:{version}",
                "input": {"files": {"path": str(source)}},
                "output": {"files": {"path": str(tmp_path / "out")}},
                "id_column": "id",
                "chunk_rows": 1000,
            }
        )
    )
    submitted = _run(
        ["--url", shared.url, "batch", "submit", "-f", str(spec), "--wait", "--timeout", "300"],
        {"SLIPWAY_TOKEN": shared.token},
    )
    assert "cli-remote-job Completed: 2,000 rows in 2 chunks" in submitted
    assert "Completed" in _same(shared, ["batch", "describe", "cli-remote-job"])
    chunks = json.loads(_same(shared, ["batch", "chunks", "cli-remote-job", "-o", "json"]))
    assert [(c["index"], c["state"]) for c in chunks] == [(0, "done"), (1, "done")]
