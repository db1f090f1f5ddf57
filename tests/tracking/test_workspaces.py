"""Workspaces in MLflow's face: two teams' experiments and models of the same names stay
two, through MLflow's own unmodified client (``MLFLOW_WORKSPACE``) against the gated
tracking server, and Slipway's registry sees each team's in its workspace."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import mlflow
import mlflow.sklearn
import mlflow.tracking._model_registry.utils as registry_utils
import mlflow.tracking._tracking_service.utils as tracking_utils
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from slipway.core.settings import load_settings
from slipway.services import Services
from tests.tracking.server import TrackingServer


@dataclass
class Teams:
    services: Services
    server: TrackingServer
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Teams]:
    root = tmp_path_factory.mktemp("teams")
    settings = load_settings(home=root / "home", server={"auth": True})
    services = Services.open(settings)
    services.workspaces.create("fraud", actor="test")
    services.workspaces.create("growth", actor="test")
    create = services.tokens.create
    tokens = {
        "home": create("home", "editor", created_by="t")[1],
        "home-deployer": create("home-deployer", "deployer", created_by="t")[1],
        "fraud": create("fraud", "editor", created_by="t", workspaces=["fraud"])[1],
        "fraud-deployer": create("fraud-dep", "deployer", created_by="t", workspaces=["fraud"])[1],
        "both": create("both", "viewer", created_by="t", workspaces=["default", "fraud"])[1],
        "admin": create("admin", "admin", created_by="t", workspaces=["*"])[1],
    }
    server = TrackingServer(settings, root / "server.log")
    try:
        server.wait_healthy()
        yield Teams(services, server, tokens)
    finally:
        server.stop()
        services.close()


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, teams: Teams) -> pytest.MonkeyPatch:
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", teams.server.url)
    return monkeypatch


def _as(monkeypatch: pytest.MonkeyPatch, teams: Teams, token: str, workspace: str) -> None:
    """MLflow's client as a user of ``workspace`` with ``token`` configures it."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", teams.tokens[token])
    monkeypatch.setenv("MLFLOW_WORKSPACE", workspace)


def _train_and_register(c: float) -> tuple[str, str, int]:
    """(experiment id, run id, version) of a run in experiment ``churn`` registered as
    model ``churn``, as a user's script does it."""
    mlflow.set_experiment("churn")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    model = LogisticRegression(C=c).fit(x, (x[:, 0] > 0).astype(int))
    with mlflow.start_run() as run:
        mlflow.log_metric("c", c)
        logged = mlflow.sklearn.log_model(
            model, name="model", input_example=x[:2], pip_requirements=["scikit-learn"]
        )
    version = mlflow.register_model(logged.model_uri, "churn")
    return run.info.experiment_id, run.info.run_id, int(version.version)


def test_two_workspaces_keep_experiments_and_models_of_the_same_name_apart(
    teams: Teams, as_user: pytest.MonkeyPatch
) -> None:
    _as(as_user, teams, "home", "default")
    home_experiment, home_run, home_version = _train_and_register(1.0)
    _as(as_user, teams, "fraud", "fraud")
    fraud_experiment, fraud_run, fraud_version = _train_and_register(0.5)

    # Same names, two things: each workspace's version 1 comes from its own run.
    assert home_experiment != fraud_experiment
    assert home_version == fraud_version == 1
    client = MlflowClient()
    assert client.get_model_version("churn", "1").run_id == fraud_run
    assert [e.experiment_id for e in client.search_experiments() if e.name == "churn"] == [
        fraud_experiment
    ]
    home_registry = teams.services.registry
    fraud_registry = home_registry.in_workspace("fraud")
    assert home_registry.get("churn", 1).run_id == home_run
    assert fraud_registry.get("churn", 1).run_id == fraud_run
    assert fraud_registry.get("churn", 1).metrics == {"c": 0.5}
    assert [m.name for m in fraud_registry.models()] == ["churn"]
    assert [m.name for m in teams.services.registry.in_workspace("growth").models()] == []

    # An alias moved in one workspace (through Slipway's registry) is that workspace's.
    _as(as_user, teams, "fraud-deployer", "fraud")
    MlflowClient().set_registered_model_alias("churn", "champion", "1")
    assert fraud_registry.get("churn", "champion").run_id == fraud_run
    with pytest.raises(Exception, match="no alias"):
        home_registry.get("churn", "champion")
    [entry] = teams.services.audit.list(action="model.alias")
    assert entry.resource == "workspaces/fraud/model/churn@champion"
    assert entry.actor == "fraud-dep"

    # Another workspace's run is not found from here: nobody registers a team's files
    # into another team's model.
    _as(as_user, teams, "home", "default")
    with pytest.raises(MlflowException):
        mlflow.register_model(f"runs:/{fraud_run}/model", "churn")
    assert [v.version for v in home_registry.versions("churn")] == [1]


def test_a_token_works_in_the_workspaces_it_was_granted_only(
    teams: Teams, as_user: pytest.MonkeyPatch
) -> None:
    def search(token: str, workspace: str | None) -> int:
        headers = {"Authorization": f"Bearer {teams.tokens[token]}"}
        if workspace is not None:
            headers["X-MLFLOW-WORKSPACE"] = workspace
        return httpx.get(
            f"{teams.server.url}/api/2.0/mlflow/experiments/search",
            params={"max_results": 10},
            headers=headers,
        ).status_code

    assert search("fraud", "fraud") == 200
    assert search("fraud", None) == 403  # the default workspace is not fraud's
    assert search("fraud", "growth") == 403
    assert search("home", "fraud") == 403
    assert search("both", "fraud") == search("both", None) == 200
    assert search("admin", "growth") == 200
    assert search("admin", "ghost") == 404  # granted everywhere, but no such workspace
    assert search("admin", "Not_A_Name") == 400
    _as(as_user, teams, "fraud", "default")
    with pytest.raises(MlflowException, match="no role in workspace 'default'"):
        MlflowClient().search_experiments()
    refused = [e for e in teams.services.audit.list(actor="fraud") if e.outcome == "denied"]
    assert refused and all(e.status_code == 403 for e in refused)
    # Each refusal is the entry of the workspace it was made in.
    resources = {e.resource for e in refused}
    assert "workspaces/growth/api/2.0/mlflow/experiments/search" in resources
    assert "/api/2.0/mlflow/experiments/search" in resources


def test_the_workspace_list_is_what_the_token_was_granted(teams: Teams) -> None:
    def listed(token: str) -> list[str]:
        answer = httpx.get(
            f"{teams.server.url}/api/3.0/mlflow/workspaces",
            headers={"Authorization": f"Bearer {teams.tokens[token]}"},
        )
        assert answer.status_code == 200
        return [w["name"] for w in answer.json()["workspaces"]]

    assert listed("fraud") == ["fraud"]
    assert listed("both") == ["default", "fraud"]
    assert listed("admin") == ["default", "fraud", "growth"]
    one = httpx.get(
        f"{teams.server.url}/api/3.0/mlflow/workspaces/growth",
        headers={"Authorization": f"Bearer {teams.tokens['fraud']}"},
    )
    assert one.status_code == 404
    created = httpx.post(
        f"{teams.server.url}/api/3.0/mlflow/workspaces",
        json={"name": "rogue"},
        headers={"Authorization": f"Bearer {teams.tokens['admin']}"},
    )
    assert created.status_code == 403 and not teams.services.workspaces.exists("rogue")
