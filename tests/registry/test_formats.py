"""``registry.allowed_model_formats``: which serializations a platform registers and loads,
read from real models saved by MLflow's own flavors, enforced at registration and again
before every load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost
import yaml
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from slipway.core.errors import InvalidInput
from slipway.core.settings import RegistrySettings
from slipway.registry import predict
from slipway.registry.formats import check_format, loaded_format
from slipway.security.audit import AuditLog
from slipway.services import Services

X = pd.DataFrame({"a": np.linspace(-1, 1, 40), "b": np.linspace(1, -1, 40) ** 2})
Y = (X["a"] > 0).astype(int)


class Constant(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return np.zeros(len(model_input))


# Stated, not inferred: MLflow infers a model's requirements in a subprocess (seconds).
REQ = ["mlflow"]


def _saved(folder: Path, save: Callable[[str], None]) -> dict[str, Any]:
    save(str(folder))
    meta: dict[str, Any] = yaml.safe_load((folder / "MLmodel").read_text())
    return meta


@pytest.mark.parametrize(
    ("name", "save", "expected"),
    [
        (
            "sklearn",  # MLflow 3's default for scikit-learn is skops
            lambda p: mlflow.sklearn.save_model(
                LogisticRegression().fit(X, Y), p, pip_requirements=REQ
            ),
            "sklearn/skops",
        ),
        (
            "sklearn-cloudpickle",
            lambda p: mlflow.sklearn.save_model(
                LogisticRegression().fit(X, Y),
                p,
                serialization_format="cloudpickle",
                pip_requirements=REQ,
            ),
            "sklearn/cloudpickle",
        ),
        (
            "booster",
            lambda p: mlflow.lightgbm.save_model(
                lightgbm.train({"verbose": -1}, lightgbm.Dataset(X, Y), num_boost_round=3),
                p,
                pip_requirements=REQ,
            ),
            "lightgbm/native",
        ),
        (
            "lgbm-classifier",
            lambda p: mlflow.lightgbm.save_model(
                lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, Y),
                p,
                pip_requirements=REQ,
            ),
            "lightgbm/pickle",
        ),
        (
            "xgb-classifier",
            lambda p: mlflow.xgboost.save_model(xgboost.XGBClassifier(n_estimators=3).fit(X, Y), p),
            "xgboost/native",
        ),
        (
            "pyfunc",
            lambda p: mlflow.pyfunc.save_model(p, python_model=Constant(), pip_requirements=REQ),
            "pyfunc/cloudpickle",
        ),
    ],
)
def test_the_format_mlflow_saved_is_recognized(
    tmp_path: Path, name: str, save: Callable[[str], None], expected: str
) -> None:
    meta = _saved(tmp_path / name, save)
    assert loaded_format(meta) == expected


def test_patterns_admit_formats() -> None:
    sklearn = {"flavors": {"python_function": {"loader_module": "mlflow.sklearn"}, "sklearn": {}}}
    assert check_format(sklearn, ["*"]) == "sklearn/cloudpickle"
    with pytest.raises(InvalidInput) as caught:
        check_format(sklearn, ["*/native", "sklearn/skops"])
    assert (
        caught.value.field == "source" and caught.value.details["format"] == "sklearn/cloudpickle"
    )
    assert "sklearn/cloudpickle" in caught.value.message and "*/native" in caught.value.message
    custom = {"flavors": {"python_function": {"loader_module": "my_loader", "code": "code"}}}
    assert loaded_format(custom) == "pyfunc/code"


def test_the_setting_takes_patterns_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RegistrySettings().allowed_model_formats == ["*"]
    assert RegistrySettings(allowed_model_formats=["*/native", "sklearn/skops"])
    for bad in (["native"], ["sklearn/skops; rm"], ["../x"]):
        with pytest.raises(ValidationError, match="flavor/serialization"):
            RegistrySettings(allowed_model_formats=bad)


def test_a_pickle_is_refused_at_registration_and_a_native_model_is_not(
    services: Services, log_model: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    services.settings.registry.allowed_model_formats = ["*/native", "sklearn/skops"]
    experiment = services.registry.mlflow.run_data(log_model())[2]
    with mlflow.start_run(experiment_id=experiment) as pickled:
        mlflow.sklearn.log_model(
            LogisticRegression().fit(X, Y),
            name="model",
            serialization_format="cloudpickle",
            input_example=X.head(2),
            pip_requirements=["scikit-learn"],
        )
    with pytest.raises(InvalidInput) as caught:
        services.registry.register("formats", f"runs:/{pickled.info.run_id}/model", actor="t")
    assert caught.value.field == "source" and "sklearn/cloudpickle" in caught.value.message
    assert services.registry.models() == []  # nothing recorded
    with mlflow.start_run(experiment_id=experiment) as run:
        booster = lightgbm.train({"verbose": -1}, lightgbm.Dataset(X, Y), num_boost_round=3)
        mlflow.lightgbm.log_model(
            booster,
            name="model",
            signature=mlflow.models.infer_signature(X, booster.predict(X)),
            pip_requirements=["lightgbm"],
        )
    native = services.registry.register("formats", f"runs:/{run.info.run_id}/model", actor="t")
    assert native.version == 1


def test_a_narrowed_policy_refuses_to_load_what_it_once_registered(
    services: Services, log_model: Callable[..., str]
) -> None:
    run_id = log_model()
    version = services.registry.register("narrowed", f"runs:/{run_id}/model", actor="test")
    assert predict.load_model(services.registry, "narrowed", version.version) is not None
    services.settings.registry.allowed_model_formats = ["*/native"]
    for load in (
        lambda: predict.load_model(services.registry, "narrowed", version.version),
        lambda: services.registry.load("narrowed", version.version),
    ):
        with pytest.raises(InvalidInput) as caught:
            load()
        assert caught.value.field == "model" and "sklearn/skops" in caught.value.message


def test_a_workspace_narrows_the_formats_its_models_may_be_in(
    services: Services, tmp_path: Path
) -> None:
    """fraud loads native models only; the default workspace keeps the platform's policy
    (everything). Checked at registration and again at load, read afresh each time."""
    services.workspaces.create("fraud", actor="t")
    fraud = services.registry.in_workspace("fraud")
    # In fraud's share of the artifact root: a workspace registers its own files only.
    saved = Path(services.settings.artifact_root) / "workspaces" / "fraud" / "skops-model"
    mlflow.sklearn.save_model(
        LogisticRegression().fit(X, Y),
        str(saved),
        serialization_format="skops",
        signature=mlflow.models.infer_signature(X, Y),
        pip_requirements=["scikit-learn"],
    )
    changed = services.workspaces.set_model_formats("fraud", ["*/native"], actor="root")
    assert changed.model_formats == ["*/native"]
    with pytest.raises(InvalidInput) as caught:
        fraud.register("churn", str(saved), actor="t")
    assert caught.value.field == "source"
    assert caught.value.details["policy"] == "workspace fraud's model formats"
    assert fraud.models() == []  # nothing recorded
    services.workspaces.set_model_formats("fraud", None, actor="root")
    version = fraud.register("churn", str(saved), actor="t")
    assert predict.load_model(fraud, "churn", version.version) is not None
    services.workspaces.set_model_formats("fraud", ["*/native", "onnx/*"], actor="root")
    with pytest.raises(InvalidInput, match="fraud's model formats") as caught:
        predict.load_model(fraud, "churn", version.version)
    assert caught.value.field == "model"
    for bad in ([], ["native"], "sklearn/skops", ["sklearn/skops; rm"]):
        with pytest.raises(InvalidInput) as refused:
            services.workspaces.set_model_formats("fraud", bad, actor="root")  # type: ignore[arg-type]
        assert refused.value.field == "model_formats"
    entries = [e.details for e in AuditLog(services.db).list(action="workspaces.model_formats")]
    assert entries[0] == {"from": None, "to": ["*/native", "onnx/*"]}
