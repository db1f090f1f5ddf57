"""One-row predictions of scikit-learn's HistGradientBoostingRegressor, all trees at once.

scikit-learn predicts a single row tree by tree from Python (~0.8 ms for 100 trees, nearly
all of it per-call overhead). Here the fitted trees are laid out once as flat arrays and
one row walks every tree a level at a time with a handful of NumPy operations per level.
The walk makes the same comparisons as scikit-learn (``x <= threshold``, NaN to the side
the tree learned), and the leaf values are added in scikit-learn's order, starting from
the same baseline, so the prediction is bit-for-bit the same; a test checks it.

Models with categorical splits or more than one tree per iteration are not compiled;
they keep scikit-learn's own predict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class CompiledForest:
    def __init__(self, model: Any) -> None:
        predictors = model._predictors
        nodes = [tree[0].nodes for tree in predictors]
        sizes = [len(n) for n in nodes]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        flat = np.concatenate(nodes)
        base = np.repeat(offsets, sizes)
        index = np.arange(len(flat), dtype=np.intp)
        leaf = flat["is_leaf"].astype(bool)
        left = np.where(leaf, index, flat["left"].astype(np.intp) + base)
        right = np.where(leaf, index, flat["right"].astype(np.intp) + base)
        # children[1] is where a row goes when it goes left; leaves point at themselves,
        # so every tree can take the same number of steps.
        self.children = np.stack([right, left])
        self.feature = flat["feature_idx"].astype(np.intp)
        self.threshold = flat["num_threshold"].astype(np.float64)
        self.missing_left = flat["missing_go_to_left"].astype(bool)
        self.value = flat["value"].astype(np.float64)
        self.roots = offsets
        self.depth = int(max(int(n["depth"].max()) for n in nodes))
        self.baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        self.inverse_link: Callable[[np.ndarray], np.ndarray] = model._loss.link.inverse

    @classmethod
    def supports(cls, model: Any) -> bool:
        from sklearn.ensemble import HistGradientBoostingRegressor

        return (
            isinstance(model, HistGradientBoostingRegressor)
            and getattr(model, "n_trees_per_iteration_", 1) == 1
            and getattr(model, "_preprocessor", None) is None
            and (getattr(model, "is_categorical_", None) is None or not model.is_categorical_.any())
            and all(len(trees) == 1 for trees in model._predictors)
        )

    def predict_row(self, row: np.ndarray) -> np.ndarray:
        node = self.roots
        missing = np.isnan(row).any()
        for _ in range(self.depth):
            x = row[self.feature[node]]
            go_left = x <= self.threshold[node]
            if missing:
                go_left |= np.isnan(x) & self.missing_left[node]
            node = self.children[go_left.view(np.int8), node]
        total = 0.0 + self.baseline
        for value in self.value[node].tolist():  # scikit-learn's order of additions
            total += value
        return self.inverse_link(np.array([total]))
