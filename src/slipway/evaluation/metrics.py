"""Evaluation metrics, each with the direction that means "better".

Classifier metrics are computed from what a model returns: labels for accuracy, precision,
recall and F1, and positive-class scores (probabilities) for ROC AUC and log loss — a gate
on ROC AUC over thresholded labels would measure the threshold, not the model. Values are
scikit-learn's, so they mean exactly what its documentation says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from slipway.core.errors import InvalidInput

Direction = Literal["maximize", "minimize"]
Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Metric:
    name: str
    task: Task
    direction: Direction
    needs_scores: bool = False


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", "classification", "maximize", needs_scores=True),
        Metric("log_loss", "classification", "minimize", needs_scores=True),
        Metric("accuracy", "classification", "maximize"),
        Metric("precision", "classification", "maximize"),
        Metric("recall", "classification", "maximize"),
        Metric("f1", "classification", "maximize"),
        Metric("rmse", "regression", "minimize"),
        Metric("mae", "regression", "minimize"),
        Metric("r2", "regression", "maximize"),
    )
}


def metric(name: str, *, field: str = "metric") -> Metric:
    """The named metric, or a 400 naming ``field`` and listing the known ones."""
    found = METRICS.get(name)
    if found is None:
        raise InvalidInput(
            f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}", field=field
        )
    return found


def classification(
    truth: np.ndarray, labels: np.ndarray, scores: np.ndarray | None
) -> dict[str, float]:
    """Binary classification metrics; ``scores`` are the positive class's probabilities
    (ROC AUC and log loss are left out without them, or when ``truth`` has one class)."""
    from sklearn import metrics as m

    out = {
        "accuracy": float(m.accuracy_score(truth, labels)),
        "precision": float(m.precision_score(truth, labels, zero_division=0)),
        "recall": float(m.recall_score(truth, labels, zero_division=0)),
        "f1": float(m.f1_score(truth, labels, zero_division=0)),
    }
    if scores is not None and np.unique(truth).size == 2:
        out["roc_auc"] = float(m.roc_auc_score(truth, scores))
        out["log_loss"] = float(m.log_loss(truth, np.clip(scores, 1e-15, 1 - 1e-15)))
    return out


def regression(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as m

    truth = truth.astype(np.float64)
    predicted = predicted.astype(np.float64)
    out = {
        "mae": float(m.mean_absolute_error(truth, predicted)),
        "rmse": float(np.sqrt(m.mean_squared_error(truth, predicted))),
    }
    if truth.size > 1:
        out["r2"] = float(m.r2_score(truth, predicted))
    return out


def improvement(candidate: float, reference: float, direction: Direction) -> float:
    """How much better ``candidate`` is than ``reference`` (negative: worse)."""
    return candidate - reference if direction == "maximize" else reference - candidate
