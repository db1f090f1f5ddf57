"""Loading registered models to predict with them: the gateway and batch jobs share this.

A model is loaded by registry reference after its files match the digest recorded at
registration. Input arrives as a :class:`Batch`: columns typed and ordered by the model's
signature. scikit-learn, LightGBM and XGBoost models whose signature is all numeric take a
fast path: the native model predicts on a float64 array, skipping pyfunc's DataFrame
conversion and schema enforcement (the caller has already checked the input against the
same signature). Their outputs equal pyfunc's — a test checks it. Everything else goes
through MLflow pyfunc.

A version declared to return probabilities (``output`` ``probabilities`` or ``both``, see
:mod:`slipway.registry.outputs`) predicts :class:`~slipway.registry.outputs.Scores`
instead: the native model's probabilities (on the same fast path when the signature is
all numeric), or a pyfunc's output passed through.
"""

from __future__ import annotations

import ctypes
import json
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import yaml

from slipway.core.errors import InvalidInput
from slipway.registry.confinement import check_before_load
from slipway.registry.models import Output
from slipway.registry.outputs import (
    Scores,
    classifier_of,
    load_native,
    native_flavor,
    pass_through,
    pyfunc_classes,
)
from slipway.registry.trees import CompiledForest

if TYPE_CHECKING:
    from slipway.registry.service import Registry

NUMERIC = frozenset({"double", "float", "long", "integer"})
INTEGRAL = frozenset({"long", "integer"})


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # MLflow column type: double, float, long, integer, boolean, string, ...
    required: bool = True


@dataclass(frozen=True)
class Batch:
    """A frame checked against a signature: values typed, columns in signature order."""

    names: list[str]
    arrays: list[np.ndarray]
    rows: int
    stacked: np.ndarray | None = None  # the float64 matrix, when checking built it

    def matrix(self) -> np.ndarray:
        """Every column as float64, side by side (numeric signatures only)."""
        if self.stacked is not None:
            return self.stacked
        if len(self.arrays) == 1:
            return self.arrays[0].astype(np.float64, copy=False).reshape(-1, 1)
        return np.column_stack(self.arrays).astype(np.float64, copy=False)

    def dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(dict(zip(self.names, self.arrays, strict=True)))

    def records(self) -> list[dict[str, Any]]:
        lists = [a.tolist() for a in self.arrays]
        return [dict(zip(self.names, row, strict=True)) for row in zip(*lists, strict=True)]


def schema_from_signature(signature: dict[str, Any]) -> list[Column] | None:
    """The column schema of an MLflow signature; ``None`` for tensor signatures."""
    inputs = signature.get("inputs")
    if isinstance(inputs, str):
        inputs = json.loads(inputs)
    if not inputs:
        return None
    columns = []
    for spec in inputs:
        if spec.get("type") == "tensor" or "name" not in spec:
            return None
        columns.append(
            Column(str(spec["name"]), str(spec["type"]), bool(spec.get("required", True)))
        )
    return columns


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
    names: tuple[str, ...] = ()  # the signature's column names (the capture layout)
    output: Output = Output.LABEL  # label: ``predict`` returns raw values, else Scores
    classes: list[Any] | None = None  # the probabilities' order, when it returns Scores
    local: str = ""  # the verified model folder (explanations read its input example)
    native: Any = None  # the flavor's own model object, when a native path loaded it
    # Built on first use by slipway.explain.build and kept as long as the model: an
    # explainer costs a tree walk or a background sample, never paid per request.
    explainer: Any = field(default=None, repr=False, compare=False)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _all_numeric(schema: list[Column] | None) -> bool:
    return bool(schema) and all(c.type in NUMERIC or c.type == "boolean" for c in schema or [])


def _fast_predict(local: str, meta: dict[str, Any]) -> tuple[Callable[[Batch], Any] | None, Any]:
    """(the native predict, the native model) — (None, None) for other flavors."""
    flavors = meta.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    if "sklearn" in flavors:
        import mlflow.sklearn

        model = mlflow.sklearn.load_model(local)
        method_name = str(pyfunc.get("predict_fn") or "predict")
        method = getattr(model, method_name)
        forest = (
            CompiledForest(model)
            if method_name == "predict" and CompiledForest.supports(model)
            else None
        )

        def sklearn_predict(batch: Batch) -> Any:
            if forest is not None and batch.rows == 1:
                return forest.predict_row(batch.matrix()[0])
            with warnings.catch_warnings():
                # Fitted on a DataFrame, predicting on its array: same values, one warning.
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return method(batch.matrix())

        return sklearn_predict, model
    if "lightgbm" in flavors:
        import lightgbm
        import mlflow.lightgbm

        lgb = mlflow.lightgbm.load_model(local)
        if isinstance(lgb, lightgbm.Booster) and lgb.num_model_per_iteration() == 1:
            return _LightGBMRows(lgb), lgb

        def lightgbm_predict(batch: Batch) -> Any:
            with warnings.catch_warnings():
                # A scikit-learn-API model fitted on a DataFrame, predicting on its array.
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return lgb.predict(batch.matrix())

        return lightgbm_predict, lgb
    if "xgboost" in flavors:
        import mlflow.xgboost
        import xgboost

        xgb = mlflow.xgboost.load_model(local)
        if isinstance(xgb, xgboost.Booster):
            return (
                lambda batch: xgb.predict(
                    xgboost.DMatrix(batch.matrix(), feature_names=batch.names)
                ),
                xgb,
            )
        return lambda batch: xgb.predict(batch.dataframe()), xgb
    return None, None


class _LightGBMRows:
    """A LightGBM booster's predict, with one-row requests through LightGBM's single-row
    C API (``LGBM_BoosterPredictForMatSingleRowFast``): the same predictor as
    ``Booster.predict``, without rebuilding it on every call — ~5 µs instead of ~60 µs.
    """

    def __init__(self, booster: Any) -> None:
        # LightGBM's own handle on its library; the single-row API has no Python wrapper.
        from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

        self.booster = booster
        self._lib = _LIB
        self._check = _safe_call
        self._config = ctypes.c_void_p()
        self._check(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(0),  # C_API_PREDICT_NORMAL
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(booster.best_iteration),  # <= 0: all, as Booster.predict
                ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
                ctypes.c_int32(booster.num_feature()),
                ctypes.c_char_p(b""),
                ctypes.byref(self._config),
            )
        )
        self._out = np.empty(1, dtype=np.float64)
        self._out_len = ctypes.c_int64()
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._lock = threading.Lock()  # the fast config is not safe across threads

    def __call__(self, batch: Batch) -> Any:
        if batch.rows != 1:
            return self.booster.predict(batch.matrix())
        row = np.ascontiguousarray(batch.matrix()[0], dtype=np.float64)
        with self._lock:
            self._check(
                self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                    self._config,
                    row.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._out_len),
                    self._out_ptr,
                )
            )
            return self._out.copy()

    def __del__(self) -> None:
        if self._config.value:
            self._lib.LGBM_FastConfigFree(self._config)


def load_model(registry: Registry, name: str, version: int, *, fast: bool = True) -> LoadedModel:
    """Verify and load ``name`` version ``version``; raises if the digest does not match
    or if the model reaches outside its folder (:mod:`slipway.registry.confinement`)."""
    started = time.perf_counter()
    registered = registry.verify(name, version)
    local = registry.local_dir(registered.artifact_key)
    registry.check_loadable(local)  # confined, and in a format the platform loads
    return load_folder(
        name,
        version,
        local,
        registered.signature,
        registered.output,
        fast=fast,
        started=started,
    )


def load_folder(
    name: str,
    version: int,
    local: str,
    signature: dict[str, Any],
    output: Output,
    *,
    fast: bool = True,
    started: float | None = None,
) -> LoadedModel:
    """Load the (verified) model files in ``local``: what :func:`load_model` does once
    the registry has checked them, and what a child process that must not reach the
    registry does (:mod:`slipway.registry.probe`)."""
    started = time.perf_counter() if started is None else started
    # Before any loader imports or reads the model's files: everything its MLmodel names
    # must be inside the folder the digest covers, however the folder changed since.
    check_before_load(local)
    schema = schema_from_signature(signature)
    meta = yaml.safe_load((Path(local) / "MLmodel").read_text())
    predict: Callable[[Batch], Any] | None = None
    classes: list[Any] | None = None
    native: Any = None
    is_fast = False
    if output is not Output.LABEL:
        predict, classes, is_fast, native = _scorer(local, meta, schema, output)
    elif (
        fast
        and _all_numeric(schema)
        and any(f in (meta.get("flavors") or {}) for f in FAST_FLAVORS)
    ):
        predict, native = _fast_predict(local, meta)
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
        names=tuple(c.name for c in schema or ()),
        output=output,
        classes=classes,
        local=local,
        native=native,
    )


def _scorer(
    local: str, meta: dict[str, Any], schema: list[Column] | None, output: Output
) -> tuple[Callable[[Batch], Scores], list[Any], bool, Any]:
    """(predict returning Scores, the classes, whether it is the fast path, the native
    model or None)."""
    labels = output is Output.BOTH
    flavor = native_flavor(meta)
    if flavor is None:
        import mlflow.pyfunc

        pyfunc = mlflow.pyfunc.load_model(local)
        classes = pyfunc_classes(meta.get("signature") or {})

        def pyfunc_scores(batch: Batch) -> Scores:
            return Scores(pass_through(pyfunc.predict(batch.dataframe()), classes))

        return pyfunc_scores, classes, False, None
    numeric = _all_numeric(schema)
    model = load_native(flavor, local)
    rows = None
    if flavor == "lightgbm" and numeric:
        import lightgbm

        if isinstance(model, lightgbm.Booster) and model.num_model_per_iteration() == 1:
            rows = _LightGBMRows(model)
        elif (
            isinstance(model, lightgbm.LGBMClassifier)
            and model.n_classes_ == 2
            and model.booster_.num_model_per_iteration() == 1
        ):
            # predict_proba's scikit-learn checks cost more than the trees for one row; its
            # booster's probability through the single-row path, as [1 - p, p], is the same.
            rows = _LightGBMRows(model.booster_)
    classifier = classifier_of(flavor, model, numeric=numeric, booster_rows=rows)

    def native_scores(batch: Batch) -> Scores:
        return classifier.scores(batch, labels=labels)

    return native_scores, classifier.classes, numeric, model


def to_batch(table: pa.Table, schema: list[Column] | None) -> Batch:
    """The model's input columns of ``table``, typed by the signature."""
    if schema is None:
        names = table.column_names
        return Batch(
            names, [table.column(n).to_numpy(zero_copy_only=False) for n in names], table.num_rows
        )
    arrays = []
    for column in schema:
        if column.name not in table.column_names:
            raise InvalidInput(f"the input has no column {column.name!r}", field=column.name)
        values = table.column(column.name).to_numpy(zero_copy_only=False)
        if column.type in NUMERIC:
            if column.type in INTEGRAL and values.dtype.kind in "iu":
                values = values.astype(np.int64 if column.type == "long" else np.int32, copy=False)
            else:
                values = values.astype(
                    np.float32 if column.type == "float" else np.float64, copy=False
                )
        elif column.type == "boolean":
            values = values.astype(bool, copy=False)
        arrays.append(values)
    stacked = None
    if schema and all(c.type in NUMERIC for c in schema):
        stacked = np.column_stack([a.astype(np.float64, copy=False) for a in arrays])
    return Batch([c.name for c in schema], arrays, table.num_rows, stacked)


def predictions_table(raw: Any, column: str, classes: list[Any] | None = None) -> dict[str, Any]:
    """Prediction columns from what the model returned (arrays, frames, lists).

    Probabilities (:class:`Scores`) become one float column per class,
    ``<column>_probability_<class>`` in the order of ``classes``, after the label column
    ``<column>`` when the version returns both."""
    if isinstance(raw, Scores):
        names = classes if classes is not None else list(range(raw.probabilities.shape[1]))
        out: dict[str, Any] = {}
        if raw.labels is not None:
            out[column] = pa.array(raw.labels)
        for index, name in enumerate(names):
            out[f"{column}_probability_{name}"] = pa.array(
                raw.probabilities[:, index].astype(np.float64, copy=False)
            )
        return out
    if hasattr(raw, "columns") and hasattr(raw, "to_dict"):  # DataFrame
        return {f"{column}_{c}": pa.array(raw[c].to_numpy()) for c in raw.columns}
    values = np.asarray(raw)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 2:
        return {column: pa.array(list(values))}
    return {column: pa.array(values)}
