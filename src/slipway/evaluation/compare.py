"""Champion/challenger: a candidate and a reference model scored on the same rows, and a
stated rule that says whether the candidate may replace the reference.

An absolute gate (``AUC >= 0.6``) lets a retrained model that is worse than the one it
replaces through, as long as both clear the bar. The rule here is relative: the metric,
its direction, and the minimum improvement of the candidate over the reference on the
same data (negative: the largest regression tolerated). Both models' figures are kept in
the result, which the execution records as the step's output and registration records in
the version's lineage, so a decision can always be explained.

With no reference yet (the alias is not set, the endpoint does not exist: the very first
model), the candidate passes and the reason says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from slipway.core.errors import InvalidInput
from slipway.evaluation import metrics as m
from slipway.evaluation.predictors import Predictor


@dataclass(frozen=True)
class Rule:
    """What "better" means: ``metric`` in ``direction`` (the metric's own by default) by at
    least ``min_improvement`` (a negative value tolerates that much regression)."""

    metric: str = "roc_auc"
    direction: str | None = None  # maximize | minimize
    min_improvement: float = 0.0

    def __post_init__(self) -> None:
        known = m.metric(self.metric)
        if self.direction is None:
            object.__setattr__(self, "direction", known.direction)
        if self.direction not in ("maximize", "minimize"):
            raise InvalidInput(
                f"direction must be maximize or minimize, not {self.direction!r}",
                field="direction",
            )
        if not np.isfinite(self.min_improvement):
            raise InvalidInput("min_improvement must be a finite number", field="min_improvement")


@dataclass(frozen=True)
class Comparison:
    metric: str
    direction: str
    min_improvement: float
    rows: int
    candidate: dict[str, Any]
    reference: dict[str, Any] | None
    improvement: float | None
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score(predictor: Predictor, data: pd.DataFrame, label: str) -> dict[str, float]:
    """Every metric of the label's task for ``predictor`` on ``data``."""
    if label not in data.columns:
        raise InvalidInput(f"evaluation data has no label column {label!r}", field="label")
    features, truth = data.drop(columns=[label]), data[label].to_numpy()
    labels, scores = predictor.predict(features)
    if _is_classification(truth):
        return m.classification(truth, labels, scores)
    return m.regression(truth, labels)


def _is_classification(truth: np.ndarray) -> bool:
    kind = truth.dtype.kind
    return kind in "bOSU" or (kind in "iu" and np.unique(truth).size <= 2)


def compare(
    candidate: Predictor,
    reference: Predictor | None,
    data: pd.DataFrame,
    label: str,
    rule: Rule,
) -> Comparison:
    """Both models on ``data``; the candidate passes if it beats the reference by the
    rule's minimum improvement (or there is no reference)."""
    if data.empty:
        raise InvalidInput("the evaluation data has no rows", field="data")
    wanted = m.metric(rule.metric)
    ours = score(candidate, data, label)
    if rule.metric not in ours:
        raise InvalidInput(
            f"metric {rule.metric!r} does not fit this model and data (a {wanted.task} metric"
            f"{', needs scores' if wanted.needs_scores else ''}); computed: {', '.join(ours)}",
            field="metric",
        )
    common: dict[str, Any] = {
        "metric": rule.metric,
        "direction": str(rule.direction),
        "min_improvement": rule.min_improvement,
        "rows": len(data),
        "candidate": {"model": candidate.ref, **ours},
    }
    if reference is None:
        return Comparison(
            **common,
            reference=None,
            improvement=None,
            passed=True,
            reason="no reference model to compare with: the candidate is the first",
        )
    theirs = score(reference, data, label)
    if rule.metric not in theirs:
        raise InvalidInput(
            f"the reference {reference.ref} gives no {rule.metric!r} on this data",
            field="metric",
        )
    direction = cast(m.Direction, rule.direction)
    gained = m.improvement(ours[rule.metric], theirs[rule.metric], direction)
    passed = bool(gained >= rule.min_improvement)
    verb = "beats" if passed else "does not beat"
    reason = (
        f"{candidate.ref} {verb} {reference.ref} on {rule.metric} ({rule.direction}):"
        f" {ours[rule.metric]:.4f} vs {theirs[rule.metric]:.4f} on the same {len(data):,} rows,"
        f" improvement {gained:+.4f} (required {rule.min_improvement:+.4f})"
    )
    return Comparison(
        **common,
        reference={"model": reference.ref, **theirs},
        improvement=float(gained),
        passed=passed,
        reason=reason,
    )
