"""Batch transform with ``explain: true``: a ``<feature>_shap`` column per feature and
``base_value`` beside the predictions, equal to LightGBM's own contributions; a model
without an explainer fails the job saying why."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from tests.batch.conftest import FEATURES, BatchPlatform


def _spec(platform: BatchPlatform, name: str, model: str, out: Path) -> dict[str, object]:
    return {
        "name": name,
        "model": model,
        "input": {"files": {"path": str(platform.inputs)}},
        "output": {"files": {"path": str(out)}},
        "id_column": "record_id",
        "chunk_rows": 4000,
        "explain": True,
    }


def test_attribution_columns_beside_the_predictions(
    platform: BatchPlatform, batch_workers: None, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = platform.services.batch.submit(
        _spec(platform, "explained", platform.model, out), actor="t"
    )
    done = platform.services.batch.wait(job.name, timeout=120)
    assert done.state == "Completed", done.error
    parts = sorted(p for p in out.iterdir() if p.name.startswith("part-"))
    result = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    result = result.sort_values("record_id").reset_index(drop=True)
    assert list(result.columns) == [
        "record_id",
        "prediction",
        *(f"{name}_shap" for name in FEATURES),
        "base_value",
    ]
    source = platform.frame.sort_values("record_id").reset_index(drop=True)
    assert list(result["record_id"]) == list(source["record_id"])
    own = platform.booster.predict(source[FEATURES], pred_contrib=True)
    shap_columns = result[[f"{name}_shap" for name in FEATURES]].to_numpy()
    np.testing.assert_allclose(shap_columns, own[:, :-1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result["base_value"], own[:, -1], rtol=0, atol=1e-9)
    # a regressor's raw output is its prediction: base value + attributions = prediction
    np.testing.assert_allclose(
        result["base_value"] + shap_columns.sum(axis=1), result["prediction"], rtol=1e-9
    )


def test_a_model_without_an_explainer_fails_the_job(
    platform: BatchPlatform, batch_workers: None, tmp_path: Path
) -> None:
    """A linear model logged without an input example: nothing to explain it with."""
    services = platform.services
    x = platform.frame[FEATURES]
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        experiment = services.registry.mlflow.experiment_id(
            "batch-linear", services.settings.artifact_root
        )
        model = LinearRegression().fit(x, x["f1"])
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.sklearn.log_model(
                model, name="model", signature=mlflow.models.infer_signature(x, x["f1"])
            )
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    version = services.registry.register("linear", f"runs:/{run.info.run_id}/model", actor="t")
    services.registry.set_approval("linear", version.version, "Approved", actor="t")
    out = tmp_path / "out"
    job = services.batch.submit(
        _spec(platform, "unexplained", f"linear:{version.version}", out), actor="t"
    )
    failed = services.batch.wait(job.name, timeout=120)
    assert failed.state == "Failed"
    assert "explain" in (failed.error or "") and "input example" in (failed.error or "")
    assert not any(p.name.startswith("part-") for p in out.glob("*"))  # nothing written
