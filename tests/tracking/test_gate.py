"""MLflow's tracking server behind Slipway's tokens, through real HTTP, as an attacker and
as MLflow's own unmodified client would use it."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import mlflow
import mlflow.tracking._model_registry.utils as registry_utils
import mlflow.tracking._tracking_service.utils as tracking_utils
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from slipway.core.settings import load_settings
from slipway.security.resources import Role
from slipway.services import Services
from tests.security.matrix import (
    CALLERS,
    DENIED,
    OTHER_WORKSPACE,
    Caller,
    Kind,
    actor,
    expected,
    headers_for,
)
from tests.security.mlflow_table import MLFLOW, audited_denial, fill, mlflow_routes
from tests.tracking.server import TrackingServer

ROLES = ("viewer", "editor", "approver", "deployer", "auditor", "admin")


@dataclass
class Gated:
    services: Services
    server: TrackingServer
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gated]:
    root = tmp_path_factory.mktemp("gated")
    settings = load_settings(home=root / "home", server={"auth": True})
    services = Services.open(settings)
    tokens = {
        role: services.tokens.create(f"mlflow-{role}", role, created_by="test")[1] for role in ROLES
    }
    tokens["author"] = services.tokens.create("author", "editor", created_by="test")[1]
    server = TrackingServer(settings, root / "server.log")
    try:
        server.wait_healthy()
        yield Gated(services, server, tokens)
    finally:
        server.stop()
        services.close()


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, gated: Gated) -> Iterator[None]:
    """MLflow's process-wide state as a user's script sets it, put back afterwards."""
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", gated.url)
    yield


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def basic(secret: str, user: str = "someone") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def client_as(monkeypatch: pytest.MonkeyPatch, gated: Gated, who: str) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", gated.tokens[who])
    return MlflowClient(tracking_uri=gated.url, registry_uri=gated.url)


def log_a_model(experiment: str) -> str:
    """A user's training script: a run, a metric and a logged model; the model's URI."""
    mlflow.set_experiment(experiment)
    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    with mlflow.start_run():
        mlflow.log_metric("loss", 0.25)
        info = mlflow.sklearn.log_model(
            LogisticRegression().fit(features, np.array([0, 1, 0, 1])),
            name="model",
            input_example=features[:2],
            pip_requirements=["scikit-learn"],
        )
    return str(info.model_uri)


# ---------------------------------------------------------------- MLflow's own client


@pytest.mark.usefixtures("as_user")
def test_mlflows_client_with_a_token_logs_and_registers_through_slipways_registry(
    gated: Gated, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", gated.tokens["author"])
    model_uri = log_a_model("gate-e2e")
    version = mlflow.register_model(model_uri, "gate-model")
    assert version.version == "1"
    # Slipway's registry did it: digest, approval pending, the token's name as the author.
    registered = gated.services.registry.get("gate-model", 1)
    assert registered.registered_by == "author"
    assert registered.approval_status == "PendingManualApproval"
    assert registered.digest and registered.lineage["run_id"] == version.run_id
    gated.services.registry.verify("gate-model", 1)
    client = MlflowClient()
    tags = client.get_model_version("gate-model", "1").tags
    assert tags["slipway.approval_status"] == "PendingManualApproval"
    # An alias moved through MLflow's API is Slipway's alias move, audited; it decides
    # what `model@alias` deployments serve, so it is the deployer's.
    with pytest.raises(MlflowException) as caught:
        client.set_registered_model_alias("gate-model", "champion", "1")
    assert caught.value.error_code == "PERMISSION_DENIED"
    deployer = client_as(monkeypatch, gated, "deployer")
    deployer.set_registered_model_alias("gate-model", "champion", "1")
    assert gated.services.registry.resolve("gate-model", "champion") == 1
    moves = gated.services.audit.list(action="model.alias", actor="mlflow-deployer")
    assert [entry.resource for entry in moves] == ["model/gate-model@champion"]
    # Loading it back through the server works as it does on MLflow's own server.
    loaded = mlflow.pyfunc.load_model("models:/gate-model@champion")
    assert list(loaded.predict(np.array([[0.0, 1.0]]))) == [0]


@pytest.mark.usefixtures("as_user")
@pytest.mark.filterwarnings("ignore:.*transition_model_version_stage.*:FutureWarning")
def test_registry_writes_that_bypass_slipways_rules_are_refused(
    gated: Gated, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = client_as(monkeypatch, gated, "editor")
    mlflow.set_tracking_uri(gated.url)
    model_uri = log_a_model("gate-refusals")
    editor.create_registered_model("guarded")
    created = mlflow.register_model(model_uri, "guarded")
    admin = client_as(monkeypatch, gated, "admin")
    refusals = [
        lambda: admin.delete_model_version("guarded", created.version),
        lambda: admin.transition_model_version_stage("guarded", created.version, "Production"),
        lambda: admin.rename_registered_model("guarded", "renamed"),
        lambda: admin.delete_registered_model("guarded"),
    ]
    for refused in refusals:
        with pytest.raises(MlflowException) as caught:
            refused()
        assert caught.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as caught:
        admin.set_model_version_tag(
            "guarded", created.version, "slipway.approval_status", "Approved"
        )
    assert (
        caught.value.error_code == "INVALID_PARAMETER_VALUE" and "slipway." in caught.value.message
    )
    # A viewer reads but moves nothing; no token at all gets 401.
    viewer = client_as(monkeypatch, gated, "viewer")
    assert viewer.get_model_version("guarded", created.version).version == created.version
    with pytest.raises(MlflowException) as caught:
        viewer.set_registered_model_alias("guarded", "champion", created.version)
    assert caught.value.error_code == "PERMISSION_DENIED"
    anonymous = httpx.post(
        f"{gated.url}/api/2.0/mlflow/registered-models/alias",
        json={"name": "guarded", "alias": "champion", "version": created.version},
    )
    assert anonymous.status_code == 401
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"
    # The two registries still agree, and the denials are in the audit log.
    assert [v.version for v in gated.services.registry.versions("guarded")] == [1]
    assert admin.get_model_version("guarded", "1").current_stage == "None"
    with pytest.raises(Exception, match="champion"):
        gated.services.registry.resolve("guarded", "champion")
    denied = [
        e
        for e in gated.services.audit.list(action="mlflow", limit=1000)
        if e.outcome == "denied" and "/registered-models/alias" in e.resource
    ]
    assert {e.actor for e in denied} >= {"mlflow-viewer", "unauthenticated"}


@pytest.mark.usefixtures("as_user")
def test_artifact_uploads_land_only_in_their_owners_open_folder(
    gated: Gated, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = client_as(monkeypatch, gated, "editor")
    experiment = editor.create_experiment("gate-artifacts")
    run = editor.create_run(experiment)
    folder = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    upload = f"{gated.url}/api/2.0/mlflow-artifacts/artifacts"
    headers = bearer(gated.tokens["editor"])
    assert httpx.put(f"{upload}/{folder}/notes.txt", content=b"ok", headers=headers).is_success
    other = editor.create_run(experiment)
    for path in (
        f"{experiment}/somewhere/else.txt",  # no owner
        f"{experiment}/{other.info.run_id}/artifacts/../../x.txt",  # traversal
        f"0/{run.info.run_id}/artifacts/x.txt",  # the run's id under another experiment
    ):
        refused = httpx.put(f"{upload}/{path}", content=b"no", headers=headers)
        assert refused.status_code == 403, (path, refused.text)
    editor.set_terminated(run.info.run_id)
    finished = httpx.put(f"{upload}/{folder}/notes.txt", content=b"changed", headers=headers)
    assert finished.status_code == 403 and "finished" in finished.json()["message"]
    viewer = httpx.put(
        f"{upload}/{other.info.artifact_uri.removeprefix('mlflow-artifacts:/')}/x.txt",
        content=b"x",
        headers=bearer(gated.tokens["viewer"]),
    )
    assert viewer.status_code == 403
    assert httpx.get(f"{upload}/{folder}/notes.txt", headers=headers).content == b"ok"  # unchanged


def test_an_experiment_cannot_point_its_artifacts_outside_the_store(gated: Gated) -> None:
    for location in ("/etc", "file:///etc", "s3://elsewhere/x", "mlflow-artifacts://host/x"):
        answer = httpx.post(
            f"{gated.url}/api/2.0/mlflow/experiments/create",
            json={"name": f"outside-{abs(hash(location))}", "artifact_location": location},
            headers=bearer(gated.tokens["editor"]),
        )
        assert answer.status_code == 400, location
        assert "artifact_location" in answer.json()["message"]


# ---------------------------------------------------------------- the UI and browsers


def test_the_ui_asks_for_the_token_and_signs_in_with_it(gated: Gated) -> None:
    challenged = httpx.get(f"{gated.url}/")
    assert challenged.status_code == 401
    assert challenged.headers["www-authenticate"].startswith("Basic ")
    assert httpx.get(f"{gated.url}/", headers=basic("not-a-token")).status_code == 401
    page = httpx.get(f"{gated.url}/", headers=basic(gated.tokens["viewer"]))
    assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
    ajax = httpx.get(
        f"{gated.url}/ajax-api/2.0/mlflow/experiments/search?max_results=5",
        headers=basic(gated.tokens["viewer"]),
    )
    assert ajax.status_code == 200
    assert httpx.get(f"{gated.url}/health").status_code == 200  # liveness needs no token


def test_a_forged_cross_site_write_is_refused(gated: Gated) -> None:
    path = f"{gated.url}/api/2.0/mlflow/experiments/create"
    credentials = basic(gated.tokens["admin"])
    for browser in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        answer = httpx.post(path, json={"name": "forged"}, headers=credentials | browser)
        assert answer.status_code == 403, browser
    same = httpx.post(
        path,
        json={"name": "from-the-ui"},
        headers=credentials | {"Origin": gated.url, "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 200, same.text


def test_a_rotated_secret_is_refused_at_once(gated: Gated) -> None:
    token, secret = gated.services.tokens.create("rotating", "viewer", created_by="test")
    search = f"{gated.url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert httpx.get(search, headers=bearer(secret)).status_code == 200
    _, fresh = gated.services.tokens.rotate(token.id)
    assert httpx.get(search, headers=bearer(secret)).status_code == 401
    assert httpx.get(search, headers=bearer(fresh)).status_code == 200


# ---------------------------------------------------------------- the permission matrix


def test_every_route_of_mlflows_server_has_a_row_and_every_row_a_route() -> None:
    """MLflow's own route list against tests/security/mlflow_table.py: a route MLflow adds
    (or drops) in a release fails here until a person writes its row."""
    routes = set(mlflow_routes())
    assert len(routes) > 200  # the whole surface, not an empty walk
    assert sorted(routes - set(MLFLOW)) == [], "MLflow routes without a row in the table"
    assert sorted(set(MLFLOW) - routes) == [], "rows for routes MLflow no longer has"


@pytest.fixture(scope="module")
def matrix_headers(gated: Gated) -> dict[Caller, dict[str, str]]:
    tokens = gated.services.tokens
    gated.services.workspaces.create(OTHER_WORKSPACE)
    return headers_for(
        CALLERS,
        lambda caller, role: tokens.create(
            caller.token_name, role, created_by="t", workspaces=caller.workspaces
        )[1],
    )


def test_every_route_of_mlflows_server_for_every_caller(
    gated: Gated, matrix_headers: dict[Caller, dict[str, str]]
) -> None:
    """Every route MLflow serves (at the path it serves it, the UI-only ones included) by
    no token, a bad token and each role: the status tests/security/mlflow_table.py
    expects, and an audit entry ``mlflow METHOD path`` for each refusal but a read's."""
    editor = matrix_headers[Caller(Kind.ROLE, Role.EDITOR)]
    with httpx.Client(base_url=gated.url, timeout=30) as http:
        experiment = http.post(
            "/api/2.0/mlflow/experiments/create", json={"name": "matrix"}, headers=editor
        ).json()["experiment_id"]
        run = http.post(
            "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment}, headers=editor
        ).json()["run"]
        # Artifact writes go into an open run's folder, where an allowed caller may write.
        folder = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
        values = {"artifact_path": f"{folder}/matrix.txt"}
        before = max((e.id for e in gated.services.audit.list(limit=1)), default=0)
        wrong: list[str] = []
        denials: Counter[tuple[str, str, str, int]] = Counter()
        for (method, template), path in mlflow_routes().items():
            need = MLFLOW[(method, template)]
            concrete = fill(path, values)
            body = None if method in ("GET", "HEAD") else b"{}"
            for caller in CALLERS:
                headers = matrix_headers[caller] | (
                    {"Content-Type": "application/json"} if body else {}
                )
                answer = http.request(method, concrete, content=body, headers=headers)
                want, got = expected(need, caller), answer.status_code
                if (want is None and got in DENIED) or (want is not None and got != want):
                    wrong.append(f"{method} {concrete} {caller.label}: {got}, wanted {want}")
                if want is not None and audited_denial(method):
                    action = f"mlflow {method} {folded(concrete)}"
                    denials[(actor(caller), action, concrete, want)] += 1
    assert wrong == []
    entries = gated.services.audit.list(action="mlflow", limit=100_000)
    recorded = Counter(
        (e.actor, e.action, e.resource, e.status_code or 0)
        for e in entries
        if e.id > before and e.outcome == "denied"
    )
    assert recorded == denials


def folded(path: str) -> str:
    """The path as the gate names it in the audit log: the UI's prefix folded."""
    return "/api/" + path.removeprefix("/ajax-api/") if path.startswith("/ajax-api/") else path
