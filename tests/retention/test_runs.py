"""Deleted MLflow runs: their artifacts and rows go once deleted long enough, never a run
a registered model version comes from, never a run that is not deleted."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression

from slipway.retention import GarbageCollector
from slipway.retention.runs import artifact_key
from slipway.services import Services


def test_deleted_runs_go_except_those_models_come_from(
    services: Services,
    collector: Callable[..., GarbageCollector],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", services.registry.mlflow.uri)
    client = services.registry.mlflow.client
    root = services.settings.artifact_root
    experiment = services.registry.mlflow.experiment_id("runs", root)

    def run_with_file() -> str:
        run_id = str(client.create_run(experiment).info.run_id)
        client.log_text(run_id, "x" * 5000, "notes/big.txt")
        client.set_terminated(run_id)
        return run_id

    gone, active = run_with_file(), run_with_file()
    with mlflow.start_run(experiment_id=experiment) as run:
        frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
        mlflow.sklearn.log_model(
            LinearRegression().fit(frame, [1.0, 2.0, 3.0]),
            name="model",
            input_example=frame,
            pip_requirements=["scikit-learn"],
        )
        mlflow.log_text("kept", "notes/kept.txt")
    source = str(run.info.run_id)
    services.registry.register("m", f"runs:/{source}/model", actor="alice")
    client.delete_run(gone)
    client.delete_run(source)
    keys = {
        run_id: artifact_key(str(client.get_run(run_id).info.artifact_uri), root)
        for run_id in (gone, active, source)
    }
    assert all(key is not None and services.artifacts.list(key) for key in keys.values())

    # Deleted moments ago: not yet old enough.
    assert collector(deleted_runs_days=30).run().kind("runs").deleted == 0
    dry = collector(deleted_runs_days=0).run(dry_run=True).kind("runs")
    assert dry.deleted == 1 and client.get_run(gone).info.lifecycle_stage == "deleted"

    report = collector(deleted_runs_days=0).run().kind("runs")

    assert report.deleted == 1 and report.protected == 1
    assert report.bytes_freed is not None and report.bytes_freed >= 5000
    with pytest.raises(MlflowException):
        client.get_run(gone)
    assert services.artifacts.list(str(keys[gone])) == []
    # The model's run and the live run keep their rows and their artifacts.
    assert client.get_run(source).info.lifecycle_stage == "deleted"
    assert services.artifacts.list(str(keys[source])) and services.artifacts.list(str(keys[active]))
    assert client.get_run(active).info.lifecycle_stage == "active"
    assert services.registry.load("m", 1).predict(pd.DataFrame({"a": [4.0]})).tolist() == [
        pytest.approx(4.0)
    ]
