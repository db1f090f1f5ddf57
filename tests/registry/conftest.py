"""A platform on each database engine, and real MLflow runs with logged models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from slipway.core.settings import load_settings
from slipway.services import Services


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(home=tmp_path / "home", database={"url": database_url})
    opened = Services.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def log_model(services: Services, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Train a tiny classifier in a real MLflow run; returns the run id."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", services.registry.mlflow.uri)
    experiment = services.registry.mlflow.experiment_id("tests", services.settings.artifact_root)

    def train(*, c: float = 1.0, example: bool = True, signature: bool = False) -> str:
        rng = np.random.default_rng(0)
        x = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
        y = (x["a"] + x["b"] > 0).astype(int)
        model = LogisticRegression(C=c).fit(x, y)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_param("C", c)
            mlflow.log_metric("accuracy", float(model.score(x, y)))
            kwargs: dict[str, object] = {}
            if example:
                kwargs["input_example"] = x.head(3)
            if signature:
                kwargs["signature"] = mlflow.models.infer_signature(x, model.predict(x))
            kwargs.setdefault("pip_requirements", ["scikit-learn"])  # inferring takes seconds
            mlflow.sklearn.log_model(model, name="model", **kwargs)
            return str(run.info.run_id)

    return train
