"""Which explainer a model gets, built once and kept with the loaded model.

- LightGBM (``Booster``, ``LGBMClassifier``, ``LGBMRegressor``, ...) and XGBoost
  (``Booster``, ``XGBClassifier``, ...): exact Tree SHAP in raw space, compiled
  (:mod:`.treeshap`), or the library's own ``pred_contrib`` when the ensemble uses what
  the compiled walk does not reproduce or numba is missing (:mod:`.native`).
- scikit-learn trees, forests and gradient boosting: ``shap.TreeExplainer``
  (:mod:`.sklearn_trees`).
- anything else (a pyfunc, a linear model, a pipeline): Kernel SHAP (:mod:`.kernel`) over
  a seeded sample of the version's registered input example — the only data a served
  model brings with it. Without one there is no explainer: :class:`Unexplainable`.

Only models whose signature is all numbers (or booleans) are explained: attributions are
computed on the float64 matrix the fast path predicts on.

A loaded model's explainer (or the reason it has none) is built on first use and cached on
the :class:`~slipway.registry.predict.LoadedModel`, so it lives and goes with the model; a
second caller during the build waits for it rather than building another.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slipway.explain.base import Explainer, OutputSpace, Unexplainable
from slipway.explain.forest import Forest, Unsupported, lightgbm_forest, xgboost_forest
from slipway.explain.kernel import KernelExplainer, KernelOptions, sample_background
from slipway.explain.native import NativeExplainer
from slipway.explain.sklearn_trees import SklearnTreeExplainer, is_tree_model
from slipway.explain.treeshap import ForestExplainer
from slipway.registry.outputs import Scores
from slipway.registry.predict import INTEGRAL, NUMERIC, Batch, Column, LoadedModel

log = logging.getLogger("slipway.explain")

_building = threading.Lock()
_BINARY_XGBOOST = frozenset({"binary:logistic", "binary:logitraw", "binary:hinge"})
_MULTI_XGBOOST = frozenset({"multi:softprob", "multi:softmax"})


@dataclass(frozen=True)
class _Refusal:
    reason: str


# -- native model objects ---------------------------------------------------------------


def tree_explainer(model: Any, names: tuple[str, ...]) -> Explainer | None:
    """The tree explainer of a fitted LightGBM, XGBoost or scikit-learn tree model whose
    columns are ``names``; None for any other model."""
    module = type(model).__module__.split(".")[0]
    explainer: Explainer | None = None
    if module == "lightgbm":
        explainer = _lightgbm(model, names)
    elif module == "xgboost":
        explainer = _xgboost(model, names)
    elif module == "sklearn" and is_tree_model(model):
        try:
            explainer = SklearnTreeExplainer(model, names)
        except Exception as exc:  # what SHAP refuses (a multiclass GradientBoosting, ...)
            raise Unexplainable(f"SHAP cannot explain this {type(model).__name__}: {exc}") from None
    if explainer is not None:
        _probe(explainer, type(model).__name__)
    return explainer


def _probe(explainer: Explainer, kind: str) -> None:
    """One row through the new explainer: compiles the walk now, not on a request, and
    finds a model the library cannot explain before anyone asks."""
    try:
        explainer.explain(np.zeros((1, len(explainer.names))))
    except Exception as exc:  # the library's own refusal, in its own exception type
        raise Unexplainable(f"explaining this {kind} failed: {type(exc).__name__}: {exc}") from None


def _lightgbm(model: Any, names: tuple[str, ...]) -> Explainer | None:
    import lightgbm

    classes: list[Any] | None = None
    if isinstance(model, lightgbm.Booster):
        booster = model
    elif isinstance(model, lightgbm.LGBMModel):
        booster = model.booster_
        if isinstance(model, lightgbm.LGBMClassifier):
            classes = list(np.asarray(model.classes_).tolist())
    else:
        return None
    dump = booster.dump_model()
    if classes is None:
        objective = str(dump.get("objective", "")).split(" ")[0]
        if objective in ("binary", "cross_entropy"):
            classes = [0, 1]
        elif objective in ("multiclass", "multiclassova"):
            classes = list(range(int(dump.get("num_class", 1))))
    try:
        return _compiled(lambda: lightgbm_forest(dump), names, classes)
    except Unsupported as exc:
        log.info("explaining with LightGBM's pred_contrib: %s", exc)
        return NativeExplainer(booster, names, classes)


def _xgboost(model: Any, names: tuple[str, ...]) -> Explainer | None:
    import xgboost

    classes: list[Any] | None = None
    iterations: int | None = None
    if isinstance(model, xgboost.Booster):
        booster = model
    elif isinstance(model, xgboost.XGBModel):
        booster = model.get_booster()
        best = getattr(model, "best_iteration", None) if hasattr(model, "best_score") else None
        iterations = None if best is None else int(best) + 1  # what its predict uses
        if isinstance(model, xgboost.XGBClassifier):
            classes = list(np.asarray(model.classes_).tolist())
    else:
        return None
    learner = json.loads(booster.save_config())["learner"]
    if classes is None:
        objective = str(learner["objective"]["name"])
        if objective in _BINARY_XGBOOST:
            classes = [0, 1]
        elif objective in _MULTI_XGBOOST:
            classes = list(range(int(learner["learner_model_param"]["num_class"])))
    try:
        explainer = _compiled(lambda: xgboost_forest(booster, iterations), names, classes)
    except Unsupported as exc:
        log.info("explaining with XGBoost's pred_contribs: %s", exc)
        return NativeExplainer(booster, names, classes, iterations=iterations)
    # The base margin (base_score through the objective's link) is outside the trees:
    # measured once as XGBoost's margin of a row minus the trees' sum for it.
    probe = np.zeros((1, len(names)))
    extra = {} if iterations is None else {"iteration_range": (0, iterations)}
    margin = np.asarray(
        booster.predict(
            xgboost.DMatrix(probe), output_margin=True, validate_features=False, **extra
        ),
        dtype=np.float64,
    ).reshape(-1)
    trees = explainer.base + explainer.contributions(probe)[0].sum(axis=1)
    explainer.base = explainer.base + (margin - trees)
    return explainer


def _compiled(
    forest: Callable[[], Forest], names: tuple[str, ...], classes: list[Any] | None
) -> ForestExplainer:
    try:
        return ForestExplainer(forest(), names, classes)
    except ImportError as exc:  # numba is not installed
        raise Unsupported(f"the compiled walk needs numba ({exc})") from None


# -- loaded (registered) models -----------------------------------------------------------


def explainer_of(model: LoadedModel, options: KernelOptions) -> Explainer:
    """``model``'s explainer, built on first use; raises :class:`Unexplainable`."""
    cached = model.explainer
    if cached is None:
        with _building:
            cached = model.explainer
            if cached is None:
                try:
                    cached = _build(model, options)
                except Unexplainable as exc:
                    cached = _Refusal(str(exc))
                model.explainer = cached
    if isinstance(cached, _Refusal):
        raise Unexplainable(cached.reason)
    return cached  # type: ignore[no-any-return]


def _build(model: LoadedModel, options: KernelOptions) -> Explainer:
    schema = model.schema
    label = f"{model.name}:{model.version}"
    if not schema:
        raise Unexplainable(
            f"model {label} has a tensor signature; explanations cover models whose"
            " signature names columns of numbers or booleans"
        )
    if not all(c.type in NUMERIC or c.type == "boolean" for c in schema):
        raise Unexplainable(
            f"model {label} takes non-numeric inputs; explanations cover models whose"
            " signature is all numbers or booleans"
        )
    names = tuple(c.name for c in schema)
    refused = ""
    if model.native is not None:
        try:
            explainer = tree_explainer(model.native, names)
        except Unexplainable as exc:  # Kernel SHAP may still explain it
            refused = f"{exc}; "
        else:
            if explainer is not None:
                return explainer
    background = _background(model, schema, options)
    if background is None:
        raise Unexplainable(
            f"model {label}: {refused or 'no tree explainer for it; '}and no registered"
            " input example to draw a background sample from for Kernel SHAP (log the"
            " model with input_example=...)"
        )
    space = OutputSpace.PREDICTION if model.classes is None else OutputSpace.PROBABILITY

    def predict(matrix: np.ndarray) -> np.ndarray:
        return _numbers(model.predict(batch_of(matrix, schema)))

    try:
        predict(background[:1])  # fails here, in a sentence, rather than inside SHAP
        return KernelExplainer(predict, background, names, space, model.classes, options)
    except Unexplainable:
        raise
    except Exception as exc:  # the user's model, on its own input example
        raise Unexplainable(
            f"model {label} failed on its input example: {type(exc).__name__}: {exc}"
        ) from None


def _background(
    model: LoadedModel, schema: list[Column], options: KernelOptions
) -> np.ndarray | None:
    """The version's input example as a float64 matrix (sampled), None if it has none."""
    if not model.local or not (Path(model.local) / "MLmodel").exists():
        return None
    from mlflow.models import Model  # heavy; only for models without a tree explainer

    try:
        logged = Model.load(str(Path(model.local) / "MLmodel"))
        if not logged.saved_input_example_info:
            return None
        example: Any = logged.load_input_example(model.local)
    except Exception as exc:  # an unreadable example is no example
        log.warning("model %s:%s: input example unreadable: %s", model.name, model.version, exc)
        return None
    if not hasattr(example, "columns"):
        return None
    missing = [c.name for c in schema if c.name not in example.columns]
    if missing:
        raise Unexplainable(f"the input example lacks column(s) {', '.join(missing)}")
    try:
        matrix = example[[c.name for c in schema]].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise Unexplainable("the input example's columns are not all numbers") from None
    if not np.isfinite(matrix).all():
        matrix = matrix[np.isfinite(matrix).all(axis=1)]
    return sample_background(matrix, options) if matrix.shape[0] else None


def batch_of(matrix: np.ndarray, schema: list[Column]) -> Batch:
    """Rows of a float64 matrix typed by ``schema``, as the gateway's checks type them."""
    arrays = []
    for index, column in enumerate(schema):
        values = matrix[:, index]
        if column.type in INTEGRAL:
            values = np.rint(values).astype(np.int64 if column.type == "long" else np.int32)
        elif column.type == "float":
            values = values.astype(np.float32)
        elif column.type == "boolean":
            values = values != 0
        arrays.append(values)
    stacked = np.ascontiguousarray(matrix, dtype=np.float64)
    return Batch([c.name for c in schema], arrays, matrix.shape[0], stacked)


def _numbers(raw: Any) -> np.ndarray:
    """A model's output as float64: (rows,) or (rows, outputs)."""
    if isinstance(raw, Scores):
        raw = raw.probabilities
    elif hasattr(raw, "to_numpy"):  # a DataFrame or Series
        raw = raw.to_numpy()
    values = np.asarray(raw)
    if values.dtype.kind not in "fiub":
        raise Unexplainable(f"the model returns {values.dtype} values, not numbers")
    values = values.astype(np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim not in (1, 2):
        raise Unexplainable(f"the model returns {values.ndim}-dimensional output")
    return values
