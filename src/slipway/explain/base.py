"""What every explainer promises: per-row attributions that add up, and in which space.

An :class:`Explanation` holds, per row, a base value and one attribution per input
feature such that ``base + sum(attributions)`` is the explained output of the model for
that row (SHAP's local accuracy). The *output space* says which output that is:

- ``raw``: the model's raw score before any link function — the log-odds of the
  positive class for LightGBM's, XGBoost's and scikit-learn's gradient-boosted binary
  classifiers, the class's raw score for a multiclass booster, the prediction itself
  for a regressor with the identity link (the log of it for a Poisson or Gamma booster).
- ``probability``: a class's probability — scikit-learn's forests and single trees, whose
  leaves hold class frequencies, and a pyfunc declared to return probabilities.
- ``prediction``: whatever a pyfunc's ``predict`` returns, explained as it is.

A classifier's explained class is the positive (second) class for a binary model and,
for a multiclass model, the class the model scores highest for that row; a regressor has
none.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np


class OutputSpace(StrEnum):
    RAW = "raw"
    PROBABILITY = "probability"
    PREDICTION = "prediction"


class Unexplainable(Exception):
    """This model has no explainer (a message for the caller, who names the field)."""


@dataclass(frozen=True)
class Explanation:
    """Attributions for a batch of rows, in the order of ``names``."""

    values: np.ndarray  # (rows, features), float64
    base: np.ndarray  # (rows,), float64
    names: tuple[str, ...]
    output_space: OutputSpace
    classes: list[Any] | None = None  # per row, the class explained (classifiers only)
    class_per_row: bool = False  # the class is each row's highest scoring (multiclass)

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    def output(self) -> np.ndarray:
        """The explained output per row: the base value plus every attribution."""
        return np.asarray(self.base + self.values.sum(axis=1))


class Explainer(Protocol):
    """Explains rows given as a float64 matrix whose columns are :attr:`names`.

    ``explain`` is safe to call from several threads at once and never changes the
    explainer; ``inline`` says that a handful of rows costs microseconds, so a server can
    explain them without leaving its event loop."""

    names: tuple[str, ...]
    output_space: OutputSpace
    inline: bool

    def explain(self, matrix: np.ndarray) -> Explanation: ...


def select_outputs(
    values: np.ndarray,
    base: np.ndarray,
    names: tuple[str, ...],
    space: OutputSpace,
    classes: list[Any] | None,
) -> Explanation:
    """One explained output per row out of a model's ``k`` outputs.

    ``values`` is (rows, features, k) and ``base`` (rows, k). One output (a regressor, or
    a binary booster's positive-class score) is explained as it is; two outputs of a
    binary classifier (class 0 and class 1) explain class 1, the positive class; more
    outputs explain, per row, the class with the highest output. ``classes`` are the
    model's class labels in output order (None for a regressor)."""
    rows, _, outputs = values.shape
    if outputs == 1:
        explained = None
        if classes is not None:  # a binary classifier scoring its positive class
            explained = [classes[-1]] * rows
        return Explanation(values[:, :, 0], base[:, 0], names, space, explained)
    if outputs == 2 and classes is not None and len(classes) == 2:
        return Explanation(values[:, :, 1], base[:, 1], names, space, [classes[1]] * rows)
    totals = base + values.sum(axis=1)
    chosen = np.argmax(totals, axis=1)
    index = np.arange(rows)
    labels = classes if classes is not None and len(classes) == outputs else list(range(outputs))
    return Explanation(
        values[index, :, chosen],
        base[index, chosen],
        names,
        space,
        [labels[int(k)] for k in chosen],
        class_per_row=True,
    )
