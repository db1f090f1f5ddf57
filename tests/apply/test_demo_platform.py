"""The demo's platform described as specs (src/slipway/demo/specs), planned and applied
on a real ``slipway up`` through the remote client and the CLI, in a workspace of its own:
the first plan creates everything, the second shows no changes, a changed weight is an
update of that field alone and rolls out as a deployment, ``--prune`` deletes a monitor
removed from the files and leaves a hand-made one, and ``export`` round-trips.

The test's overlay (environments/test.yaml, written here) stands in for what a test
platform lacks: the classifier registered here takes columns a and b (no enrichment),
and the baseline is built from a file rather than the model's recorded training set.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from slipway.apply.execute import apply
from slipway.apply.export import export_to
from slipway.apply.plan import plan
from slipway.apply.specset import load_spec_set
from slipway.cli.main import app
from slipway.client import Client
from slipway.core.errors import NotFound
from slipway.registry.models import ApprovalStatus
from tests.apply.conftest import write
from tests.registry.logged import register_classifier
from tests.shared_platform import SharedPlatform

DEMO = Path(__file__).parents[2] / "src" / "slipway" / "demo" / "specs"
MODEL = ENDPOINT = "flight-delay"
MONITOR = "flight-delay-drift"

runner = CliRunner()

FLOWS = """
from slipway.pipelines.dsl import pipeline, step


@step
def one() -> int:
    return 1


@pipeline(name="flight-delay-train")
def train() -> None:
    one()


@pipeline(name="flight-delay-retrain")
def retrain() -> None:
    one()
"""


@dataclass
class Demo:
    specs: Path
    client: Client
    workspace: str
    env: dict[str, str]
    register: Callable[[], int]

    def cli(self, *args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=self.env)
        return result.exit_code, result.output


@pytest.fixture
def demo(
    shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Demo]:
    monkeypatch.setenv("COLUMNS", "250")
    workspace = f"iac-{uuid.uuid4().hex[:8]}"
    services = shared_platform.services
    services.workspaces.create(workspace, actor="tests")
    mine = services.in_workspace(workspace)
    monkeypatch.setenv("MLFLOW_WORKSPACE", workspace)  # the run is logged in the workspace
    version = register_classifier(mine, monkeypatch, MODEL)
    mine.registry.set_approval(MODEL, version, ApprovalStatus.APPROVED, actor="tests", comment="")
    for alias in ("champion", "challenger"):
        mine.registry.set_alias(MODEL, alias, version, actor="tests")
    reference = tmp_path / "reference.parquet"
    pd.DataFrame(
        {"a": [0.1 * i for i in range(50)], "b": [1.0 - 0.02 * i for i in range(50)]}
    ).to_parquet(reference)
    specs = tmp_path / "specs"
    shutil.copytree(DEMO, specs)
    # The demo's pipelines live in Slipway's own package, which a server runs only when its
    # admin allows the module; a team's pipelines live in their repository and ship with
    # the registration as a code bundle — as these do.
    code = tmp_path / "code"
    flows = f"flows_{workspace.replace('-', '_')}"
    write(code, f"{flows}.py", FLOWS)
    monkeypatch.syspath_prepend(str(code))
    write(
        specs,
        "environments/test.yaml",
        f"""
        kind: Pipeline
        name: flight-delay-train
        definition: {flows}:train
        ---
        kind: Pipeline
        name: flight-delay-retrain
        definition: {flows}:retrain
        ---
        kind: Endpoint
        name: {ENDPOINT}
        enrichment: null
        deployment: {{strategy: all_at_once, alarms: []}}
        ---
        kind: Baseline
        name: flight-delay-train
        source: {{model_version: null, file: "{reference}"}}
        """,
    )
    env = {
        "SLIPWAY_URL": shared_platform.url,
        "SLIPWAY_TOKEN": shared_platform.token,
        "SLIPWAY_WORKSPACE": workspace,
    }
    with Client(shared_platform.url, token=shared_platform.token, workspace=workspace) as client:
        yield Demo(
            specs, client, workspace, env, lambda: register_classifier(mine, monkeypatch, MODEL)
        )


def test_plan_apply_plan_of_the_demo_platform(demo: Demo, tmp_path: Path) -> None:
    code, output = demo.cli("plan", str(demo.specs), "--env", "test", "--json")
    assert code == 2, output  # changes: CI can gate on it
    first = json.loads(output)
    assert {c["action"] for c in first["changes"]} == {"create"}
    assert len(first["changes"]) == 13

    code, output = demo.cli("apply", str(demo.specs), "--env", "test")
    assert code == 0, output
    assert "applied: 13 change(s)" in output
    endpoint = demo.client.endpoints.wait(ENDPOINT, timeout=300)
    assert endpoint.status == "InService"
    assert demo.client.monitoring.get(MONITOR).spec.baseline == "flight-delay-train"
    assert demo.client.pipelines.get("flight-delay-retrain").target.endswith(":retrain")

    code, output = demo.cli("plan", str(demo.specs), "--env", "test")
    assert code == 0, output
    assert "No changes: the platform matches spec set flight-delay (13 resources)" in output

    # A changed weight: an update of exactly that field, rolled out as a deployment.
    overlay = demo.specs / "environments" / "test.yaml"
    overlay.write_text(
        overlay.read_text().replace(
            "enrichment: null\n", "enrichment: null\nvariants: [{name: champion, weight: 0.7}]\n"
        )
    )
    spec_set = load_spec_set(demo.specs, environment="test")
    planned = plan(spec_set, demo.client)
    [change] = [c for c in planned.changes if c.action != "unchanged"]
    assert (change.kind, change.name, change.action) == ("Endpoint", ENDPOINT, "update")
    assert [(f.path, f.old, f.new) for f in change.fields] == [("variants.0.weight", 1.0, 0.7)]
    result = apply(planned, spec_set, demo.client, actor="tests")
    assert result.ok, result.error
    assert [d.version for d in demo.client.endpoints.history(ENDPOINT)] == [1, 2]
    rolled = demo.client.endpoints.wait(ENDPOINT, timeout=300)
    assert rolled.active is not None and rolled.active.version == 2
    assert rolled.active.spec.variants[0].weight == 0.7
    assert not plan(load_spec_set(demo.specs, environment="test"), demo.client).has_changes

    # The champion alias moves to a new version: the endpoint names it, so the next plan
    # deploys it (an endpoint's stored config keeps the version it was given until then).
    newer = demo.register()
    demo.client.registry.set_alias(MODEL, "champion", newer, actor="tests")
    planned = plan(load_spec_set(demo.specs, environment="test"), demo.client)
    [change] = [c for c in planned.changes if c.action != "unchanged"]
    assert [(f.path, f.old, f.new) for f in change.fields] == [("variants.0.version", 1, newer)]
    code, output = demo.cli("apply", str(demo.specs), "--env", "test")
    assert code == 0, output
    moved = demo.client.endpoints.wait(ENDPOINT, timeout=300)
    assert moved.active is not None and moved.active.spec.variants[0].version == newer

    # --prune: the monitor removed from the files goes; a hand-made one stays.
    demo.client.monitoring.create(
        {
            "name": "by-hand",
            "kind": "data_quality",
            "endpoint": ENDPOINT,
            "baseline": "flight-delay-train",
        },
        actor="tests",
    )
    monitoring = demo.specs / "monitoring.yaml"
    monitoring.write_text(monitoring.read_text().split("---")[0])
    code, output = demo.cli("plan", str(demo.specs), "--env", "test", "--prune", "--json")
    assert code == 2, output
    pending = [(c["action"], c["kind"], c["name"]) for c in json.loads(output)["changes"]]
    assert [p for p in pending if p[0] != "unchanged"] == [("delete", "Monitor", MONITOR)]
    code, output = demo.cli("apply", str(demo.specs), "--env", "test", "--prune")
    assert code == 0, output
    with pytest.raises(NotFound):
        demo.client.monitoring.get(MONITOR)
    assert demo.client.monitoring.get("by-hand").endpoint == ENDPOINT

    # Export round-trips: the exported specs plan as unchanged (the hand-made monitor, not
    # owned by the set, is adopted).
    exported = tmp_path / "exported"
    export_to(demo.client, exported, spec_set="flight-delay")
    again = plan(load_spec_set(exported), demo.client)
    assert [
        (c.kind, c.name, c.action, c.adopt)
        for c in again.changes
        if c.action != "unchanged" or c.adopt
    ] == [("Monitor", "by-hand", "unchanged", True)]
