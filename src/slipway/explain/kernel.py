"""The model-agnostic fallback: ``shap.KernelExplainer`` over a small background sample.

Kernel SHAP fits, per explained row, a weighted linear model to the model's outputs on
``nsamples`` coalitions of features, each coalition's missing features filled in from
every background row — ``nsamples x background`` predictions a row, so both are bounded
(the background to :attr:`KernelOptions.background_rows` rows drawn with a fixed seed).
With ``2^features - 2`` samples or more every coalition is evaluated and the answer is
exact for that background. Attributions always add up to the output minus the
background's mean output, which is the base value.

KernelExplainer draws its coalitions from NumPy's global generator; each call seeds it
(and puts back what it held), so the same row is always explained the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from slipway.core.settings import ExplainSettings
from slipway.explain import shaplib
from slipway.explain.base import Explanation, OutputSpace, Unexplainable, select_outputs

_GLOBAL_RANDOM = threading.Lock()


@dataclass(frozen=True)
class KernelOptions:
    """How much work Kernel SHAP may do for one row."""

    background_rows: int = 100  # at most this many rows of the background, sampled
    nsamples: int = 512  # coalitions evaluated per explained row
    seed: int = 0

    @classmethod
    def of(cls, settings: ExplainSettings) -> KernelOptions:
        return cls(settings.background_rows, settings.nsamples, settings.seed)


def sample_background(rows: np.ndarray, options: KernelOptions) -> np.ndarray:
    """At most ``background_rows`` of ``rows``, drawn without replacement (seeded)."""
    if rows.shape[0] <= options.background_rows:
        return rows
    chosen = np.random.default_rng(options.seed).choice(
        rows.shape[0], options.background_rows, replace=False
    )
    return rows[np.sort(chosen)]


class KernelExplainer:
    """Kernel SHAP of ``predict`` (float64 matrix → (rows,) or (rows, k) numbers)."""

    inline = False

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        background: np.ndarray,
        names: tuple[str, ...],
        space: OutputSpace,
        classes: list[Any] | None,
        options: KernelOptions,
    ) -> None:
        shap = shaplib.shap()

        if background.ndim != 2 or background.shape[0] == 0:
            raise Unexplainable("the background sample has no rows")
        self.names = names
        self.output_space = space
        self.classes = classes
        self.options = options
        self._predict = predict
        # Building it predicts the background once: the base value.
        self._explainer = shap.KernelExplainer(predict, background, link="identity")

    def explain(self, matrix: np.ndarray) -> Explanation:
        rows = np.ascontiguousarray(matrix, dtype=np.float64)
        with _GLOBAL_RANDOM:
            state = np.random.get_state()
            np.random.seed(self.options.seed)
            try:
                values = np.asarray(
                    self._explainer.shap_values(
                        rows, nsamples=self.options.nsamples, l1_reg=False, silent=True
                    ),
                    dtype=np.float64,
                )
            finally:
                np.random.set_state(state)
        expected = np.asarray(self._explainer.expected_value, dtype=np.float64).reshape(-1)
        if values.ndim == 2:
            values = values[:, :, np.newaxis]
        base = np.broadcast_to(expected, (rows.shape[0], expected.shape[0]))
        return select_outputs(values, base, self.names, self.output_space, self.classes)
