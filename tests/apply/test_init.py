"""``slipway init``: the scaffolded model repository's own tests pass, its specs plan and
apply against a real server (``slipway up``, through its remote client, in a workspace of
its own), and the command refuses to write over anything."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from slipway.cli.main import app
from tests.shared_platform import SharedPlatform

runner = CliRunner()


def test_the_scaffold_tests_pass_and_its_plan_runs_against_a_server(
    tmp_path: Path, shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "churn-model"
    result = runner.invoke(app, ["init", str(repo)])
    assert result.exit_code == 0, result.output
    assert (repo / "churn_model" / "pipeline.py").is_file()
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "slipway.yml").read_text())
    assert set(workflow["jobs"]) == {"test", "plan", "apply-stage", "promote-prod"}
    runs = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    assert "uv run slipway --profile stage apply specs --env stage" in runs
    assert any("models promote churn-model champion --to prod" in r for r in runs)

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "6 passed" in tests.stdout

    workspace = f"init-{uuid.uuid4().hex[:8]}"
    shared_platform.services.workspaces.create(workspace, actor="tests")
    monkeypatch.chdir(repo)  # as the README says: commands run from the repository
    monkeypatch.setenv("COLUMNS", "200")
    env = {
        "SLIPWAY_URL": shared_platform.url,
        "SLIPWAY_TOKEN": shared_platform.token,
        "SLIPWAY_WORKSPACE": workspace,
    }
    planned = runner.invoke(app, ["plan", "specs", "--env", "stage"], env=env)
    assert planned.exit_code == 2, planned.output
    assert "4 to create, 0 to update, 0 to delete, 0 unchanged" in planned.output
    applied = runner.invoke(app, ["apply", "specs", "--env", "stage"], env=env)
    assert applied.exit_code == 0, applied.output
    again = runner.invoke(app, ["plan", "specs", "--env", "stage"], env=env)
    assert again.exit_code == 0, again.output
    mine = shared_platform.services.in_workspace(workspace)
    assert mine.schedules.get("churn-model-weekly").cron == "0 4 * * *"  # stage: daily
    assert mine.pipelines.get("churn-model-train").target == "churn_model.pipeline:training"


def test_init_writes_nothing_over_files_and_refuses_bad_names(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["init", str(taken)])
    assert result.exit_code == 1 and "is not an empty folder" in result.output
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    result = runner.invoke(app, ["init", str(tmp_path / "x"), "--name", "Bad Name"])
    assert result.exit_code == 2 and "name 'Bad Name' is not a valid name" in result.output
    assert not (tmp_path / "x").exists()
