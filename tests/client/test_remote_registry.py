"""The model registry and tracking through slipway.Client over HTTP, against the embedded
API: the same tests run on both (a parametrized fixture).

The workflow is a remote user's: log a small scikit-learn model to the platform's MLflow
server (the URI ``platform.tracking_uri`` gives), register it from there, approve it,
point an alias at it, read its lineage and history, compare, reject. Bad input raises
the same typed error naming the field on both sides, and writes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from slipway.core.errors import Forbidden, InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.registry.lineage import Lineage
from slipway.registry.models import ApprovalStatus
from slipway.registry.resources import (
    Comparison,
    ModelInput,
    ModelVersion,
    RegisteredModel,
    Transition,
)
from tests.shared_platform import SharedPlatform
from tests.waiting import eventually


def _unique(prefix: str, side: str) -> str:
    return f"{prefix}-{side}-{uuid.uuid4().hex[:8]}"


def _wait_for_mlflow(tracking_uri: str) -> None:
    """``slipway up`` answers before its MLflow server may: wait for the server's health."""

    def healthy() -> bool:
        try:
            return httpx.get(f"{tracking_uri}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    eventually(healthy, what=f"MLflow's server at {tracking_uri} answered", timeout=120)


def _log_model(
    tracking_uri: str, experiment: str, monkeypatch: pytest.MonkeyPatch, c: float
) -> str:
    """Train a tiny classifier and log it, with its C and accuracy, to the MLflow server at
    ``tracking_uri`` (for this test only: the variable, not mlflow's global); the run id."""
    _wait_for_mlflow(tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    y = (x["a"] + x["b"] > 0).astype(int)
    model = LogisticRegression(C=c).fit(x, y)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("C", c)
        mlflow.log_metric("accuracy", float(model.score(x, y)))
        mlflow.sklearn.log_model(
            model, name="model", input_example=x.head(2), pip_requirements=["scikit-learn"]
        )
    return str(run.info.run_id)


@pytest.fixture(autouse=True)
def _mlflow_token(shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform runs with auth on: MLflow's client sends a Slipway token, as a user's
    script does with ``MLFLOW_TRACKING_TOKEN``."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", shared_platform.token)


def test_the_tracking_uri_is_the_platforms_mlflow_server(
    platform: Any, shared_platform: SharedPlatform
) -> None:
    assert platform.tracking_uri == shared_platform.tracking_url
    _wait_for_mlflow(platform.tracking_uri)
    anonymous = httpx.get(f"{platform.tracking_uri}/api/2.0/mlflow/experiments/search")
    assert anonymous.status_code == 401  # the same tokens as the control plane
    experiments = mlflow.MlflowClient(tracking_uri=platform.tracking_uri).search_experiments()
    assert any(e.name == "Default" for e in experiments)  # a live MLflow answers there


def test_log_register_approve_alias_lineage_compare_reject(
    platform: Any, side: str, monkeypatch: pytest.MonkeyPatch, shared_platform: SharedPlatform
) -> None:
    registry = platform.registry
    # Over HTTP the token that registered a version may not approve it (segregation of
    # duties): another token, an approver's, does. In process the actor is the caller's say.
    approver_name = _unique("approver", side)
    approver_client = shared_platform.client(
        shared_platform.services.tokens.create(approver_name, "approver", created_by="t")[1]
    )
    approving = registry if side == "embedded" else approver_client.registry
    name, group = _unique("delay", side), _unique("weather", side)
    experiment = _unique("remote-registry", side)
    first, second = (
        _log_model(platform.tracking_uri, experiment, monkeypatch, c) for c in (0.5, 2.0)
    )
    lineage = Lineage(
        pipeline="train-delay",
        training_set={"feature_refs": [f"{group}:temp"], "group_versions": {group: 4}},
    )
    registered = registry.register(
        name, f"runs:/{first}/model", actor="alice", lineage=lineage, description="first"
    )
    assert isinstance(registered, ModelVersion)
    assert (registered.name, registered.version) == (name, 1)
    assert registered.approval_status is ApprovalStatus.PENDING
    assert registered.run_id == first and len(registered.digest) == 64
    assert registered.params == {"C": "0.5"} and registered.metrics["accuracy"] > 0.5
    assert registered.signature["inputs"]  # inferred from the input example
    registry.register(name, f"runs:/{second}/model", actor="alice")

    if side == "remote":
        with pytest.raises(Forbidden, match="segregation of duties"):
            registry.set_approval(name, 1, "Approved", actor="bob", comment="mine")
    approved = approving.set_approval(name, 1, "Approved", actor="bob", comment="AUC is fine")
    assert approved.approval_status is ApprovalStatus.APPROVED
    assert registry.check_deployable(name, 1, "production").version == 1
    with pytest.raises(Forbidden, match="Approved"):
        registry.check_deployable(name, 2, "production")
    assert registry.set_alias(name, "champion", 1, actor="bob").aliases == ["champion"]
    assert registry.get(name, "champion").version == registry.resolve(name, "champion") == 1
    assert registry.verify(name, "champion").digest == registered.digest

    versions = registry.versions(name)
    assert isinstance(versions, Listing) and [v.version for v in versions] == [1, 2]
    assert versions[0].lineage["pipeline"] == "train-delay"
    assert versions[0].lineage["run_id"] == first  # filled in from the source
    listed = {m.name: m for m in registry.models()}
    assert listed[name] == RegisteredModel(
        name=name,
        versions=2,
        latest=2,
        approved=[1],
        latest_status=registry.get(name, 2).approval_status,
        updated_at=listed[name].updated_at,
    )
    assert listed[name].updated_at is not None
    assert registry.trained_on(group) == [
        ModelInput(model=name, version=1, feature_group=group, delta_version=4)
    ]
    assert registry.trained_on(group, 3) == []
    comparison = registry.compare(name, ["champion", 2])
    assert isinstance(comparison, Comparison) and comparison.versions == [1, 2]
    assert comparison.params["C"] == ["0.5", "2.0"]
    assert comparison.approval_status == [ApprovalStatus.APPROVED, ApprovalStatus.PENDING]

    registry.set_approval(name, 1, ApprovalStatus.REJECTED, actor="carol", comment="leaks")
    with pytest.raises(Forbidden, match="Rejected"):
        registry.check_deployable(name, "champion", "staging")
    history = registry.transitions(name, 1)
    assert all(isinstance(t, Transition) for t in history)
    assert [(t.from_status, t.to_status, t.comment) for t in history] == [
        (None, ApprovalStatus.PENDING, "registered"),
        (ApprovalStatus.PENDING, ApprovalStatus.APPROVED, "AUC is fine"),
        (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, "leaks"),
    ]
    # In process the actor is who the caller says; over HTTP, the token's holder.
    expected = (
        ["alice", "bob", "carol"]
        if side == "embedded"
        else ["shared-tests", approver_name, "shared-tests"]
    )
    assert [t.actor for t in history] == expected
    approver_client.close()
    registry.delete_alias(name, "champion", actor="carol")
    with pytest.raises(NotFound, match="champion"):
        registry.get(name, "champion")


def test_bad_input_is_the_same_typed_error_on_both_sides(platform: Any, side: str) -> None:
    registry = platform.registry
    missing = _unique("nothing", side)
    with pytest.raises(NotFound, match=missing):
        registry.get(missing, 1)
    with pytest.raises(NotFound, match=missing):
        registry.versions(missing)
    with pytest.raises(NotFound, match=missing):
        registry.transitions(missing, 1)
    with pytest.raises(NotFound, match="no alias"):
        registry.resolve(missing, "champion")
    cases: list[tuple[str, Any]] = [
        ("alias", lambda: registry.set_alias(missing, "Bad Alias", 1, actor="x")),
        ("alias", lambda: registry.set_alias(missing, "7", 1, actor="x")),
        ("status", lambda: registry.set_approval(missing, 1, "Maybe", actor="x")),
        ("versions", lambda: registry.compare(missing, [1])),
        ("name", lambda: registry.register("Bad Name", f"runs:/{'0' * 32}/model", actor="x")),
        ("source", lambda: registry.register(missing, "/etc/passwd", actor="x")),
        ("source", lambda: registry.register(missing, "https://elsewhere/model", actor="x")),
        ("output", lambda: registry.register(missing, "runs:/x/model", actor="x", output="many")),
    ]
    for field, call in cases:
        with pytest.raises(InvalidInput) as bad:
            call()
        assert bad.value.field == field, (field, bad.value.message)
    with pytest.raises(NotFound):  # nothing was registered by the refused calls
        registry.versions(missing)
