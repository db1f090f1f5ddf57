"""LightGBM's and XGBoost's own SHAP output: ``pred_contrib`` / ``pred_contribs``.

The reference the compiled walk (:mod:`.treeshap`) is tested against, and the explainer
of the ensembles it does not flatten (categorical splits, linear trees, DART, ...) or
when numba is not installed. Both libraries return, per row and per output, one value per
feature and the expected value last, in the raw (margin) space.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slipway.explain.base import Explanation, OutputSpace, select_outputs


class NativeExplainer:
    """Explains through the library's own contribution output."""

    output_space = OutputSpace.RAW
    inline = False  # Lundberg's recursive algorithm: ~0.3-0.6 ms a row for 100 trees

    def __init__(
        self,
        model: Any,
        names: tuple[str, ...],
        classes: list[Any] | None,
        *,
        iterations: int | None = None,
    ) -> None:
        """``model``: a ``lightgbm.Booster`` or an ``xgboost.Booster``; ``iterations``:
        XGBoost's boosting rounds to use (None: all, as ``Booster.predict``)."""
        self.model = model
        self.names = names
        self.classes = classes
        self.iterations = iterations

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """(rows, outputs, features + 1): the attributions, then the expected value."""
        import lightgbm

        rows = np.ascontiguousarray(matrix, dtype=np.float64)
        width = len(self.names) + 1
        if isinstance(self.model, lightgbm.Booster):
            raw = np.asarray(self.model.predict(rows, pred_contrib=True), dtype=np.float64)
        else:
            import xgboost

            extra: dict[str, Any] = {}
            if self.iterations is not None:
                extra["iteration_range"] = (0, self.iterations)
            raw = np.asarray(
                self.model.predict(
                    xgboost.DMatrix(rows),
                    pred_contribs=True,
                    validate_features=False,
                    **extra,
                ),
                dtype=np.float64,
            )
        return raw.reshape(rows.shape[0], -1, width)

    def explain(self, matrix: np.ndarray) -> Explanation:
        raw = self.contributions(matrix)
        return select_outputs(
            raw[:, :, :-1].transpose(0, 2, 1),
            raw[:, :, -1],
            self.names,
            self.output_space,
            self.classes,
        )
