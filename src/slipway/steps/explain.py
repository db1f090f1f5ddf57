"""The pipeline step that computes a model's global importance for its registration.

    importance = explain_global(model, holdout, label="delayed")
    register_model(model, "delays", reports={"importance": importance})

``register_model`` keeps the report in the version's lineage, where the model card reads
it: which features the model leans on, measured on the evaluation set it was judged on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from slipway.core.errors import InvalidInput
from slipway.explain.base import Explainer, OutputSpace, Unexplainable
from slipway.explain.build import tree_explainer
from slipway.explain.importance import mean_abs
from slipway.explain.kernel import KernelExplainer, KernelOptions, sample_background
from slipway.pipelines.dsl import step

KERNEL_ROWS = 500  # rows Kernel SHAP explains when max_rows is not given


@step(kind="explanation")
def explain_global(
    model: Any,
    data: pd.DataFrame,
    label: str | None = None,
    max_rows: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean |SHAP| per feature of ``model`` over ``data`` (its feature columns; ``label``
    is left out), largest first: ``{"importance": {feature: mean_abs}, "rows": n,
    "output_space": "raw" | "probability" | "prediction"}``.

    Tree models (LightGBM, XGBoost, scikit-learn trees) are explained exactly on every row
    (or ``max_rows`` of them, drawn with ``seed``); any other model by Kernel SHAP on
    ``max_rows`` rows (default 500) with a background sampled from ``data``."""
    names = _features(model, data, label)
    frame = data[list(names)]
    try:
        matrix = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("explain_global needs numeric feature columns", field="data") from None
    explainer = tree_explainer(model, names)
    limit = max_rows
    if explainer is None:
        explainer = _kernel(model, matrix, names, seed)
        limit = KERNEL_ROWS if max_rows is None else max_rows
    if limit is not None and matrix.shape[0] > limit:
        chosen = np.random.default_rng(seed).choice(matrix.shape[0], limit, replace=False)
        matrix = matrix[np.sort(chosen)]
    return {
        "importance": mean_abs(explainer, matrix),
        "rows": int(matrix.shape[0]),
        "output_space": explainer.output_space.value,
    }


def _features(model: Any, data: pd.DataFrame, label: str | None) -> tuple[str, ...]:
    """The columns the model was fitted on, in its order; else every column but
    ``label``."""
    known = getattr(model, "feature_names_in_", None)
    if known is None and hasattr(model, "feature_name"):  # a LightGBM Booster
        known = model.feature_name()
    if known is None:  # an XGBoost Booster fitted on named columns
        known = getattr(model, "feature_names", None)
    names = [str(n) for n in known] if known is not None else []
    if not names or any(n not in data.columns for n in names):
        names = [str(c) for c in data.columns if c != label]
    if label is not None and label not in data.columns:
        raise InvalidInput(f"the data has no column {label!r}", field="label")
    if not names:
        raise InvalidInput("the data has no feature columns", field="data")
    return tuple(names)


def _kernel(model: Any, matrix: np.ndarray, names: tuple[str, ...], seed: int) -> Explainer:
    options = KernelOptions(seed=seed)
    proba = getattr(model, "predict_proba", None)
    columns = list(names)

    def frame(rows: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=columns)

    if proba is not None and getattr(model, "classes_", None) is not None:
        classes = list(np.asarray(model.classes_).tolist())
        return KernelExplainer(
            lambda rows: np.asarray(proba(frame(rows)), dtype=np.float64),
            sample_background(matrix, options),
            names,
            OutputSpace.PROBABILITY,
            classes,
            options,
        )
    predict = getattr(model, "predict", None)
    if predict is None:
        raise Unexplainable(f"a {type(model).__name__} has no predict method to explain")
    return KernelExplainer(
        lambda rows: np.asarray(predict(frame(rows)), dtype=np.float64),
        sample_background(matrix, options),
        names,
        OutputSpace.PREDICTION,
        None,
        options,
    )
