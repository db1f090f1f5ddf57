"""Loading registered models for serving, and predicting with them.

A model is loaded by registry reference after its files match the digest recorded at
registration. scikit-learn, LightGBM and XGBoost models whose signature is all numeric
take a fast path: the native model predicts on a float64 array built straight from the
request, skipping pyfunc's DataFrame conversion and schema enforcement (the gateway has
already checked the input against the same signature). Their outputs equal pyfunc's —
a test checks it. Everything else goes through MLflow pyfunc.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slipway.registry.service import Registry
from slipway.serving.gateway.inputs import NUMERIC, Batch, Column, schema_from_signature

FAST_FLAVORS = ("sklearn", "lightgbm", "xgboost")


@dataclass
class LoadedModel:
    name: str
    version: int
    schema: list[Column] | None
    predict: Callable[[Batch], Any]
    fast: bool
    size_bytes: int
    load_ms: float
    last_used: float = 0.0


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _all_numeric(schema: list[Column] | None) -> bool:
    return bool(schema) and all(c.type in NUMERIC or c.type == "boolean" for c in schema or [])


def _fast_predict(local: str, meta: dict[str, Any]) -> Callable[[Batch], Any] | None:
    flavors = meta.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    if "sklearn" in flavors:
        import mlflow.sklearn

        model = mlflow.sklearn.load_model(local)
        method = getattr(model, str(pyfunc.get("predict_fn") or "predict"))

        def sklearn_predict(batch: Batch) -> Any:
            with warnings.catch_warnings():
                # Fitted on a DataFrame, predicting on its array: same values, one warning.
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return method(batch.matrix())

        return sklearn_predict
    if "lightgbm" in flavors:
        import mlflow.lightgbm

        lgb = mlflow.lightgbm.load_model(local)
        return lambda batch: lgb.predict(batch.matrix())
    if "xgboost" in flavors:
        import mlflow.xgboost
        import xgboost

        xgb = mlflow.xgboost.load_model(local)
        if isinstance(xgb, xgboost.Booster):
            return lambda batch: xgb.predict(
                xgboost.DMatrix(batch.matrix(), feature_names=batch.names)
            )
        return lambda batch: xgb.predict(batch.dataframe())
    return None


def load_model(registry: Registry, name: str, version: int, *, fast: bool = True) -> LoadedModel:
    """Verify and load ``name`` version ``version``; raises if the digest does not match."""
    started = time.perf_counter()
    registered = registry.verify(name, version)
    schema = schema_from_signature(registered.signature)
    local = registry.local_dir(registered.artifact_key)
    meta = yaml.safe_load((Path(local) / "MLmodel").read_text())
    predict: Callable[[Batch], Any] | None = None
    if (
        fast
        and _all_numeric(schema)
        and any(f in (meta.get("flavors") or {}) for f in FAST_FLAVORS)
    ):
        predict = _fast_predict(local, meta)
    is_fast = predict is not None
    if predict is None:
        import mlflow.pyfunc

        pyfunc = mlflow.pyfunc.load_model(local)

        def pyfunc_predict(batch: Batch) -> Any:
            return pyfunc.predict(batch.dataframe())

        predict = pyfunc_predict
    return LoadedModel(
        name=name,
        version=version,
        schema=schema,
        predict=predict,
        fast=is_fast,
        size_bytes=_dir_size(Path(local)),
        load_ms=(time.perf_counter() - started) * 1000,
    )
