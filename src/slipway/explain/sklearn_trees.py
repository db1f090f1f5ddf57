"""scikit-learn's tree models, explained by ``shap.TreeExplainer`` (path-dependent).

Forests and single trees of classifiers hold class frequencies in their leaves, so they
are explained in probability space; gradient boosting in its raw space (log-odds for a
binary classifier, the prediction for a regressor). scikit-learn compares float32
feature values, which SHAP reproduces.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from slipway.explain import shaplib
from slipway.explain.base import Explanation, OutputSpace, select_outputs

TREE_MODELS = frozenset(
    {
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    }
)


def is_tree_model(model: Any) -> bool:
    kind = type(model)
    return kind.__module__.startswith("sklearn.") and kind.__name__ in TREE_MODELS


class SklearnTreeExplainer:
    """``shap.TreeExplainer`` on a fitted scikit-learn tree model."""

    inline = False

    def __init__(self, model: Any, names: tuple[str, ...]) -> None:
        shap = shaplib.shap()

        if getattr(model, "n_features_in_", len(names)) != len(names):
            raise ValueError(
                f"the model reads {model.n_features_in_} features; its signature names {len(names)}"
            )
        self._explainer = shap.TreeExplainer(model)
        self.names = names
        classes = getattr(model, "classes_", None)
        self.classes = None if classes is None else list(np.asarray(classes).tolist())
        probability = self._explainer.model.tree_output == "probability"
        self.output_space = OutputSpace.PROBABILITY if probability else OutputSpace.RAW
        # SHAP's explainer keeps per-call state on itself; one call at a time.
        self._lock = threading.Lock()

    def explain(self, matrix: np.ndarray) -> Explanation:
        rows = np.ascontiguousarray(matrix, dtype=np.float64)
        with self._lock:
            values = np.asarray(self._explainer.shap_values(rows, check_additivity=False))
            expected = np.asarray(self._explainer.expected_value, dtype=np.float64).reshape(-1)
        if values.ndim == 2:
            values = values[:, :, np.newaxis]
        base = np.broadcast_to(expected, (rows.shape[0], expected.shape[0]))
        return select_outputs(
            values.astype(np.float64, copy=False), base, self.names, self.output_space, self.classes
        )
