"""Built-in steps that judge a model: its metrics on held-out data, and champion/challenger
against the version it would replace."""

from __future__ import annotations

from typing import Any

import pandas as pd

from slipway.pipelines.dsl import step
from slipway.steps.platform import platform


@step(kind="evaluation")
def evaluate(model: Any, data: pd.DataFrame, label: str) -> dict[str, float]:
    """Metrics of ``model`` on ``data`` — for a classifier accuracy, precision, recall, F1
    and, from its scores, ROC AUC and log loss; for a regressor MAE, RMSE, R² — as a dict a
    condition can gate on (``metrics["roc_auc"] >= 0.75``)."""
    from slipway.evaluation.compare import score
    from slipway.evaluation.predictors import Predictor

    return score(Predictor(model, "candidate"), data, label)


@step(kind="model-comparison", cache=False)  # the reference moves: never reuse
def compare_models(
    model: Any,
    data: pd.DataFrame,
    label: str,
    reference: str,
    metric: str = "roc_auc",
    min_improvement: float = 0.0,
    direction: str | None = None,
) -> dict[str, Any]:
    """Champion/challenger: ``model`` and the ``reference`` version (``name@champion``,
    ``name:3``, or ``endpoint:NAME`` for what an endpoint serves) scored on the same
    ``data``; ``passed`` says whether ``model`` beats it on ``metric`` by at least
    ``min_improvement`` (negative: the regression tolerated), ``reason`` says why. Give the
    result to :func:`register_model` (a failed comparison registers the version Rejected,
    with the reason) or gate on it (``condition(comparison["passed"] == True)``)."""
    from slipway.evaluation.compare import Rule, compare
    from slipway.evaluation.predictors import Predictor, load_registered, resolve_reference

    rule = Rule(metric, direction, min_improvement)
    with platform() as services:
        found = resolve_reference(services, reference)
        champion = load_registered(services, *found) if found else None
        result = compare(Predictor(model, "candidate"), champion, data, label, rule)
        return result.to_dict() | {"reference_ref": reference}
