"""Registering real (tiny) MLflow models, for tests of faces that deploy them."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from slipway.registry.models import ApprovalStatus
from slipway.services import Services


def register_classifier(
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    *,
    status: ApprovalStatus = ApprovalStatus.PENDING,
) -> int:
    """Train a logistic regression in a real MLflow run, register it as a new version of
    ``name`` (with ``status``) and return the version number."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", services.registry.mlflow.uri)
    run_id = logged_run(services)
    version = services.registry.register(name, f"runs:/{run_id}/model", actor="test")
    if status is not ApprovalStatus.PENDING:
        services.registry.set_approval(name, version.version, status, actor="test", comment="")
    return version.version


def logged_run(services: Services) -> str:
    """A real MLflow run (on ``MLFLOW_TRACKING_URI``, which the caller points at the
    platform's store) that logged a small classifier as ``model``; its id."""
    experiment_id = services.registry.mlflow.experiment_id("faces", services.settings.artifact_root)
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    model = LogisticRegression().fit(x, (x["a"] + x["b"] > 0).astype(int))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.sklearn.log_model(
            model, name="model", input_example=x.head(2), pip_requirements=["scikit-learn"]
        )
    return str(run.info.run_id)
