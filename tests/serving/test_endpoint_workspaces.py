"""Endpoints of two workspaces under one name, through the control plane's REST API and
a real gateway with auth on: each workspace lists, describes and changes its own, each
serves its own workspace's model at its own URL, captures into its own share of the
artifact root, and a token reaches only the endpoints of the workspaces it holds a role
in and was granted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from slipway.api.app import create_app
from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.core.workspace import WORKSPACE_HEADER
from slipway.monitoring.capture import read_window
from slipway.registry.models import ApprovalStatus
from slipway.security.tokens import check_invoke
from slipway.services import Services
from slipway.serving.gateway.app import workspace_route
from tests.registry.logged import register_classifier
from tests.serving.conftest import Platform, RunningGateway, start_gateway
from tests.waiting import eventually

TEAM = "team-a"
ROWS = {"dataframe_split": {"columns": ["a", "b"], "data": [[2.0, 2.0], [-2.0, -2.0]]}}


@dataclass
class Two:
    services: Services
    gateway: RunningGateway
    secrets: dict[str, str]
    versions: dict[str, int]  # workspace -> the version of "clf" its "churn" serves

    def invoke(self, path: str, who: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.secrets[who]}"} if who else {}
        return httpx.post(f"{self.gateway.url}{path}", json=ROWS, headers=headers, timeout=30)


def _register_inverted(services: Services) -> int:
    """Version of ``clf`` in workspace TEAM: a classifier answering the opposite class
    to the default workspace's, so which one served a request is plain."""
    registry = services.registry.in_workspace(TEAM)
    experiment = registry.mlflow.experiment_id("faces", services.settings.artifact_root)
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    model = LogisticRegression().fit(x, (x["a"] + x["b"] < 0).astype(int))
    with registry.mlflow.scope(), mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(
            model, name="model", input_example=x.head(2), pip_requirements=["scikit-learn"]
        )
    version = registry.register("clf", f"runs:/{run.info.run_id}/model", actor="test")
    registry.set_approval("clf", version.version, ApprovalStatus.APPROVED, actor="t")
    return version.version


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Two]:
    home = tmp_path_factory.mktemp("endpoint-workspaces") / "home"
    settings = load_settings(home=home, server={"auth": True, "allowed_hosts": []})
    services = Services.open(settings)
    services.workspaces.create(TEAM, actor="test")
    monkeypatch = pytest.MonkeyPatch()
    try:
        ours = register_classifier(services, monkeypatch, "clf")
        theirs = _register_inverted(services)
    finally:
        monkeypatch.undo()
    tokens = services.tokens
    secrets = {
        "admin": tokens.create("ws-admin", "admin", created_by="t", workspaces=["*"])[1],
        "team-deployer": tokens.create(
            "team-deployer", "deployer", created_by="t", workspaces=[TEAM]
        )[1],
        "team-svc": tokens.create(
            "team-svc", "viewer", created_by="t", workspaces=[TEAM], invoke=[f"{TEAM}/churn"]
        )[1],
        "default-svc": tokens.create("default-svc", "viewer", created_by="t", invoke=["churn"])[1],
        # Granted every endpoint, but a role in the default workspace only.
        "any-default": tokens.create("any-default", "viewer", created_by="t", invoke=["*"])[1],
    }
    gateway, stop = start_gateway(services)
    try:
        spec = {"name": "churn", "environment": "staging", "data_capture": {"enabled": True}}
        Platform(services, {}).deploy(
            spec | {"variants": [{"name": "main", "model": f"clf:{ours}"}]}
        )
        team = services.endpoints.in_workspace(TEAM)
        team.create(spec | {"variants": [{"name": "main", "model": f"clf:{theirs}"}]}, actor="t")

        def settled() -> bool:
            services.deployments.tick()
            return team.describe("churn").status.value == "InService"

        eventually(settled, what="team-a's churn in service", timeout=60)
        yield Two(services, gateway, secrets, {"default": ours, TEAM: theirs})
    finally:
        stop()
        services.close()


def test_each_workspace_serves_its_own_model_at_its_own_url(two: Two) -> None:
    ours = two.invoke("/endpoints/churn/invocations", "admin")
    theirs = two.invoke(f"/workspaces/{TEAM}/endpoints/churn/invocations", "admin")
    assert ours.status_code == theirs.status_code == 200, (ours.text, theirs.text)
    assert ours.json()["predictions"] == [1, 0]
    assert theirs.json()["predictions"] == [0, 1]  # the inverted classifier: team-a's
    assert theirs.headers["x-slipway-model-version"] == f"clf:{two.versions[TEAM]}"
    # The Open Inference Protocol names the same endpoint under the same prefix.
    infer = {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "FP64", "data": [2.0]},
            {"name": "b", "shape": [1], "datatype": "FP64", "data": [2.0]},
        ]
    }
    headers = {"Authorization": f"Bearer {two.secrets['admin']}"}
    oip = httpx.post(
        f"{two.gateway.url}/workspaces/{TEAM}/v2/models/churn/infer", json=infer, headers=headers
    )
    assert oip.status_code == 200, oip.text
    assert oip.json()["model_name"] == "churn"
    assert oip.json()["outputs"][0]["data"] == [0]
    meta = httpx.get(f"{two.gateway.url}/workspaces/{TEAM}/v2/models/churn", headers=headers)
    assert meta.json()["versions"] == [str(two.versions[TEAM])]


def test_a_grant_reaches_one_workspaces_endpoint(two: Two) -> None:
    team_url = f"/workspaces/{TEAM}/endpoints/churn/invocations"
    assert two.invoke(team_url, "team-svc").status_code == 200
    assert two.invoke("/endpoints/churn/invocations", "team-svc").status_code == 403
    assert two.invoke("/endpoints/churn/invocations", "default-svc").status_code == 200
    refused = two.invoke(team_url, "default-svc")
    assert refused.status_code == 403
    assert f"'{TEAM}/churn'" in refused.json()["error"]["message"]
    # "*" is every endpoint of the workspaces the token holds a role in, not the others.
    assert two.invoke("/endpoints/churn/invocations", "any-default").status_code == 200
    assert two.invoke(team_url, "any-default").status_code == 403
    assert two.invoke(team_url, None).status_code == 401
    # A workspace named only by the prefix: a name with a slash is no endpoint.
    odd = two.invoke(f"/endpoints/{TEAM}/churn/invocations", "admin")
    assert odd.status_code == 404
    assert (
        two.invoke("/workspaces/Bad_Name/endpoints/churn/invocations", "admin").status_code == 404
    )


def test_metrics_and_features_of_a_workspace_need_a_role_in_it(two: Two) -> None:
    def metrics(path: str, who: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {two.secrets[who]}"}
        return httpx.get(f"{two.gateway.url}{path}", headers=auth, timeout=30)

    assert metrics(f"/workspaces/{TEAM}/metrics", "default-svc").status_code == 403
    assert metrics("/metrics", "team-svc").status_code == 403
    two.invoke(f"/workspaces/{TEAM}/endpoints/churn/invocations", "team-svc")

    def counted() -> bool:
        text = metrics(f"/workspaces/{TEAM}/metrics", "team-svc").text
        two.gateway.gateway.recorder._scrapes.clear()
        return 'slipway_requests_total{endpoint="churn",variant="main"}' in text

    eventually(counted, what="team-a's requests in its metrics", timeout=30)
    # The default workspace's metrics name its own endpoint, never "team-a/churn".
    assert f"{TEAM}/" not in metrics("/metrics", "default-svc").text


def test_the_control_plane_keeps_them_apart(two: Two) -> None:
    with TestClient(create_app(two.services), base_url="http://127.0.0.1") as http:
        team = {
            "Authorization": f"Bearer {two.secrets['team-deployer']}",
            WORKSPACE_HEADER: TEAM,
        }
        listed = http.get("/api/v1/endpoints", headers=team)
        assert listed.status_code == 200
        assert [(e["name"], e["workspace"]) for e in listed.json()] == [("churn", TEAM)]
        described = http.get("/api/v1/endpoints/churn", headers=team).json()
        assert described["url"].endswith(f"/workspaces/{TEAM}/endpoints/churn/invocations")
        assert described["active"]["spec"]["variants"][0]["version"] == two.versions[TEAM]
        # Its token holds no role in the default workspace: the default's churn is not its.
        default = {"Authorization": f"Bearer {two.secrets['team-deployer']}"}
        assert http.get("/api/v1/endpoints/churn", headers=default).status_code == 403
        history = http.get("/api/v1/endpoints/churn/history", headers=team).json()
        assert [d["version"] for d in history] == [1]
        stats = http.get("/api/v1/endpoints/churn/stats", headers=team)
        assert stats.status_code == 200, stats.text
        # The A/B report reads the workspace's own captures and labels (the labels another
        # test of this module posts for team-a's two rows, or none yet: either order).
        ab = http.get(
            "/api/v1/endpoints/churn/ab-test",
            params={"since": "2026-01-01T00:00:00Z", "metric": "accuracy"},
            headers=team,
        )
        assert ab.status_code == 200, ab.text
        assert ab.json()["endpoint"] == "churn" and ab.json()["labelled_rows"] in (0, 2)
    resources = {e.resource for e in two.services.audit.list(action="endpoint.create", limit=50)}
    assert {"endpoint/churn", f"workspaces/{TEAM}/endpoint/churn"} <= resources


def test_a_workspaces_capture_lies_in_its_share(two: Two) -> None:
    artifacts = two.services.artifacts
    assert two.invoke("/endpoints/churn/invocations", "default-svc").status_code == 200
    assert (
        two.invoke(f"/workspaces/{TEAM}/endpoints/churn/invocations", "team-svc").status_code == 200
    )

    def captured() -> list[str]:
        return [k for k in artifacts.list(f"workspaces/{TEAM}/capture") if k.endswith(".parquet")]

    keys = eventually(captured, what="team-a's capture in its share", timeout=30)
    assert all(
        k.startswith(f"workspaces/{TEAM}/capture/endpoint=churn/variant=main/") for k in keys
    )
    eventually(lambda: artifacts.list("capture"), what="the default's capture", timeout=30)
    # The default workspace's capture folder holds its own endpoint's, by its bare name.
    assert {k.split("/")[1] for k in artifacts.list("capture")} == {"endpoint=churn"}


def test_grants_name_workspace_endpoints() -> None:
    assert check_invoke(["team-a/churn", "default/fraud", "churn"]) == [
        "churn",
        "fraud",
        "team-a/churn",
    ]
    for bad in (["Team_A/churn"], ["team-a/"], ["a/b/c"]):
        with pytest.raises(InvalidInput) as caught:
            check_invoke(bad)
        assert caught.value.field == "invoke"


def test_the_prefix_names_the_workspace() -> None:
    assert workspace_route("/endpoints/x/invocations") == ("default", "/endpoints/x/invocations")
    assert workspace_route("/workspaces/team-a/v2/models/x") == ("team-a", "/v2/models/x")
    assert workspace_route("/workspaces/team-a/metrics") == ("team-a", "/metrics")


def test_the_sdk_invokes_its_workspaces_endpoint(two: Two, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_TOKEN", two.secrets["team-svc"])
    team = two.services.endpoints.in_workspace(TEAM)
    team.gateway_url = two.gateway.url
    frame = pd.DataFrame({"a": [2.0], "b": [2.0]})
    answer = team.invoke("churn", frame)
    assert answer.endpoint == "churn" and answer.predictions == [0]
    assert answer.model == f"clf:{two.versions[TEAM]}"


def test_monitors_and_baselines_of_a_workspace_watch_its_own_endpoint(
    two: Two, tmp_path: Path
) -> None:
    """``quality`` and ``shape`` in both workspaces: each monitor reads its workspace's
    captures and labels only, its baseline and report lie in its workspace's share, and
    another workspace's runs are not found."""
    services = two.services
    ours, theirs = services.monitoring, services.monitoring.in_workspace(TEAM)
    headers = {"Authorization": f"Bearer {two.secrets['admin']}"}
    for path, inference in (
        ("/endpoints/churn/invocations", "ours-1"),
        (f"/workspaces/{TEAM}/endpoints/churn/invocations", "theirs-1"),
    ):
        answer = httpx.post(
            f"{two.gateway.url}{path}",
            json=ROWS,
            headers=headers | {"X-Slipway-Inference-Id": inference},
        )
        assert answer.status_code == 200, answer.text

    def captured(workspace: str, inference: str) -> bool:
        key = "churn" if workspace == "default" else f"{TEAM}/churn"
        start = utcnow() - timedelta(hours=1)
        table = read_window(services.artifacts, key, start, utcnow() + timedelta(minutes=1))
        return inference in table.column("inference_id").to_pylist()

    eventually(lambda: captured(TEAM, "theirs-1"), what="team-a's capture", timeout=30)
    eventually(lambda: captured("default", "ours-1"), what="the default's capture", timeout=30)
    # Labels for team-a's requests, sent in team-a: the default's monitor never sees them.
    theirs.put_ground_truth(
        "churn",
        [
            {"inference_id": "theirs-1", "row": 0, "label": 0},
            {"inference_id": "theirs-1", "row": 1, "label": 1},
        ],
        actor="t",
    )
    data = tmp_path / "baseline.parquet"
    pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [1.0, 2.0, 3.0]}).to_parquet(data)
    for monitoring in (ours, theirs):
        baseline = monitoring.baselines.create("shape", source={"file": str(data)}, actor="t")
        assert baseline.name == "shape"
        monitoring.create(
            {"name": "quality", "kind": "model_quality", "endpoint": "churn",
             "model_quality": {"problem_type": "binary_classification"}},
            actor="t",
        )  # fmt: skip
    assert services.artifacts.exists(
        f"workspaces/{TEAM}/monitoring/baselines/shape/statistics.json"
    )
    assert services.artifacts.exists("monitoring/baselines/shape/statistics.json")
    start, end = utcnow() - timedelta(hours=1), utcnow() + timedelta(minutes=1)
    runs = {
        name: monitoring.run("quality", actor="t", start=start, end=end)
        for name, monitoring in (("default", ours), (TEAM, theirs))
    }
    for run in runs.values():
        services.monitoring.execute(run.id)  # a worker's: any workspace's run
    their_run = theirs.get_run(runs[TEAM].id)
    assert their_run.state == "completed" and their_run.status != "no_data", their_run
    report = theirs.report(runs[TEAM].id)
    assert report.labelled == 2
    assert report.metrics["accuracy"] == 1.0  # team-a's inverted model, team-a's labels
    reports = services.artifacts.list(f"workspaces/{TEAM}/monitoring/reports/quality")
    assert reports == [f"workspaces/{TEAM}/monitoring/reports/quality/{runs[TEAM].id}.json"]
    assert ours.get_run(runs["default"].id).status == "no_data"  # nothing labelled here
    with pytest.raises(NotFound):
        ours.get_run(runs[TEAM].id)
    with pytest.raises(NotFound):
        ours.report(runs[TEAM].id)
    assert [m.name for m in theirs.list()] == ["quality"]
    resources = {e.resource for e in services.audit.list(action="monitor.create", limit=50)}
    assert {"monitor/quality", f"workspaces/{TEAM}/monitor/quality"} <= resources
