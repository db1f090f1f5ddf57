"""The bias report as a pipeline step: computed at registration, on the evaluation set.

    data = holdout(...)
    model = fit(...)
    bias = bias_report(model, data, "approved", "sex", facet_values=["female"])
    register_model(model, "credit", metrics, reports={"bias": bias})

The pre-training metrics come from ``data[label]``, the post-training ones from the
model's predicted labels on the same rows (its ``predict``; a booster returning the
positive class's probability is read as predicting positive at >= 0.5, as the
``evaluate`` step reads it). What each metric means, and when it is None, is
:mod:`slipway.monitoring.bias`'s docstring. The model is given the columns it was fitted
on (``feature_names_in_``) when it knows them, else every column but the label — so the
facet may be a column the model never sees.

Mistakes are :class:`InvalidInput` naming the argument, before anything is predicted: a
``label`` or ``facet`` column that does not exist, ``facet_values`` and
``facet_threshold`` both or neither given, a facet value (or threshold) no row matches, a
``positive_label`` no label equals.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from slipway.core.errors import InvalidInput
from slipway.evaluation.predictors import Predictor
from slipway.monitoring import bias
from slipway.pipelines.dsl import step


def _facet(
    facet: str, facet_values: Any, facet_threshold: float | None, column: pd.Series
) -> tuple[bias.Facet, bias.Groups]:
    if facet_values is not None and not isinstance(facet_values, list | tuple):
        raise InvalidInput(
            f"facet_values must be a list of values, not {type(facet_values).__name__}",
            field="facet_values",
        )
    values = tuple(facet_values) if facet_values is not None else None
    threshold = float(facet_threshold) if facet_threshold is not None else None
    rule = bias.Facet(facet, values=values, threshold=threshold)
    split = bias.groups(column, rule)
    if split.unmatched:
        if rule.values is None:
            raise InvalidInput(
                f"no row of column {facet!r} is >= facet_threshold {threshold:g}",
                field="facet_threshold",
            )
        missing = ", ".join(repr(v) for v in split.unmatched)
        raise InvalidInput(
            f"facet value(s) {missing} match no row of column {facet!r}", field="facet_values"
        )
    return rule, split


def _features(model: Any, data: pd.DataFrame, label: str) -> pd.DataFrame:
    features = data.drop(columns=[label])
    fitted_on = getattr(model, "feature_names_in_", None)
    if fitted_on is None:
        return features
    missing = [str(c) for c in fitted_on if c not in features.columns]
    if missing:
        raise InvalidInput(
            f"the data lacks the model's input column(s) {', '.join(missing)}", field="data"
        )
    return features[list(fitted_on)]


@step(kind="bias")
def bias_report(
    model: Any,
    data: pd.DataFrame,
    label: str,
    facet: str,
    facet_values: list[bool | int | float | str] | None = None,
    facet_threshold: float | None = None,
    positive_label: bool | int | float | str = 1,
) -> dict[str, Any]:
    """Clarify's pre- and post-training bias metrics of ``model`` on ``data`` for the
    ``facet`` column: group d is the rows with one of ``facet_values`` (or a value
    ``>= facet_threshold``), group a the rest; ``positive_label`` is the favourable
    outcome. Returns the facet, ``groups`` (counts and rates of a and d), ``metrics``
    (CI, DPL, KL, JS, DI, DPPL, AD, RD, equal_opportunity_difference,
    equalized_odds_difference) and ``undefined`` (metric → why it is None) — give it to
    :func:`register_model <slipway.steps.register_model>` as
    ``reports={"bias": ...}``."""
    if not isinstance(data, pd.DataFrame) or data.empty:
        raise InvalidInput("the evaluation data must be a table with rows", field="data")
    for name, field in ((label, "label"), (facet, "facet")):
        if name not in data.columns:
            raise InvalidInput(f"the data has no column {name!r}", field=field)
    if facet == label:
        raise InvalidInput("the facet cannot be the label column", field="facet")
    rule, split = _facet(facet, facet_values, facet_threshold, data[facet])
    label_positive, labelled = bias.positives(data[label], positive_label)
    if not label_positive.any():
        shown = ", ".join(repr(v) for v in data[label].drop_duplicates().head(5).tolist())
        raise InvalidInput(
            f"no value of column {label!r} equals positive_label {positive_label!r}"
            f" (it holds {shown}, ...)",
            field="positive_label",
        )
    predicted_labels, _ = Predictor(model, "candidate").predict(_features(model, data, label))
    predicted, predicted_known = bias.positives(
        predicted_labels, positive_label, field="positive_label"
    )
    result = bias.compute(
        split.in_d, label_positive, predicted, keep=split.known & labelled & predicted_known
    )
    return {
        "facet": rule.describe(),
        "positive_label": positive_label,
        "rows": len(data),
        "left_out": len(data) - result["rows"],
        "groups": result["groups"],
        "metrics": result["metrics"],
        "undefined": result["undefined"],
    }
