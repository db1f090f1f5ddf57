"""Global importance: the mean absolute attribution of each feature over a data set.

SHAP's global summary (the bar of ``shap.plots.bar``): how much, on average, a feature
moves the explained output away from the base value, in the explanation's output space.
Rows are explained a chunk at a time, so a large data set costs one chunk of memory.
"""

from __future__ import annotations

import numpy as np

from slipway.explain.base import Explainer

CHUNK_ROWS = 100_000


def mean_abs(explainer: Explainer, matrix: np.ndarray) -> dict[str, float]:
    """Feature → mean |attribution| over the rows of ``matrix``, largest first (ties in
    the order of the features)."""
    rows = matrix.shape[0]
    if rows == 0:
        return {name: 0.0 for name in explainer.names}
    totals = np.zeros(len(explainer.names), dtype=np.float64)
    for start in range(0, rows, CHUNK_ROWS):
        explained = explainer.explain(matrix[start : start + CHUNK_ROWS])
        totals += np.abs(explained.values).sum(axis=0)
    means = totals / rows
    order = np.argsort(-means, kind="stable")
    return {explainer.names[i]: float(means[i]) for i in order}
