"""A model-quality run: captured predictions joined with late ground truth, scored.

The join is on (inference id, row); predictions without a label yet are left out (and
counted), labels without a captured prediction in the window are ignored. Metrics are
scikit-learn's, so they mean exactly what their documentation says:

- ``regression``: MAE, RMSE, R² (and MSE);
- ``binary_classification``: accuracy, precision, recall, F1 for ``positive_label`` and,
  when the model returns scores (``probability_threshold`` set), ROC AUC over the scores;
  predictions are the scores thresholded;
- ``multiclass_classification``: accuracy and weighted precision, recall, F1.

Thresholds are ``{"metric": {"min": x}}`` or ``{"max": x}``; a metric past its bound is a
violation.
"""

from __future__ import annotations

from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa

from slipway.core.errors import InvalidInput

ProblemType = Literal["regression", "binary_classification", "multiclass_classification"]
PROBLEM_TYPES: tuple[str, ...] = (
    "regression",
    "binary_classification",
    "multiclass_classification",
)
METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("mae", "mse", "rmse", "r2"),
    "binary_classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
    "multiclass_classification": ("accuracy", "precision", "recall", "f1"),
}


def join(predictions: pa.Table, labels: pa.Table) -> pa.Table:
    """Captured rows with their labels: ``prediction``, ``label``, ``label_number``."""
    con = duckdb.connect()
    con.register("captured", predictions.select(["inference_id", "row", "prediction"]))
    con.register("labels", labels)
    return con.sql(
        "SELECT c.inference_id, c.row, c.prediction, l.label, l.label_number "
        "FROM captured c JOIN labels l USING (inference_id, row)"
    ).to_arrow_table()


def _as_text(values: np.ndarray) -> np.ndarray:
    return np.asarray(
        [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in values],
        dtype=object,
    )


def compute(
    pairs: pa.Table,
    problem_type: str,
    *,
    positive_label: Any = 1,
    probability_threshold: float | None = None,
) -> dict[str, float | None]:
    """The metrics of ``problem_type`` over joined pairs (see :func:`join`)."""
    from sklearn import metrics as m

    if pairs.num_rows == 0:
        return {}
    predicted = pairs["prediction"].to_numpy(zero_copy_only=False)
    if problem_type == "regression":
        truth = pairs["label_number"].to_numpy(zero_copy_only=False).astype(np.float64)
        if np.isnan(truth).any():
            raise InvalidInput("regression needs numeric labels", field="ground_truth.label")
        scores = predicted.astype(np.float64)
        mse = float(m.mean_squared_error(truth, scores))
        return {
            "mae": float(m.mean_absolute_error(truth, scores)),
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "r2": float(m.r2_score(truth, scores)) if truth.size > 1 else None,
        }
    scores = None
    if probability_threshold is not None:
        scores = predicted.astype(np.float64)
        predicted = np.where(scores >= probability_threshold, 1.0, 0.0)
    numeric = pa.types.is_floating(pairs["prediction"].type) or scores is not None
    if numeric and pairs["label_number"].null_count == 0:
        truth_values: np.ndarray = pairs["label_number"].to_numpy(zero_copy_only=False)
        predicted_values: np.ndarray = predicted.astype(np.float64)
        positive: Any = float(positive_label) if _is_number(positive_label) else positive_label
    else:
        truth_values = np.asarray(pairs["label"].to_pylist(), dtype=object)
        predicted_values = _as_text(predicted)
        positive = (
            str(positive_label).lower() if isinstance(positive_label, bool) else str(positive_label)
        )
    if problem_type == "binary_classification":
        result: dict[str, float | None] = {
            "accuracy": float(m.accuracy_score(truth_values, predicted_values)),
            "precision": float(
                m.precision_score(
                    truth_values, predicted_values, pos_label=positive, zero_division=0
                )
            ),
            "recall": float(
                m.recall_score(truth_values, predicted_values, pos_label=positive, zero_division=0)
            ),
            "f1": float(
                m.f1_score(truth_values, predicted_values, pos_label=positive, zero_division=0)
            ),
            "roc_auc": None,
        }
        if scores is not None and len(set(truth_values.tolist())) == 2:
            result["roc_auc"] = float(m.roc_auc_score(truth_values == positive, scores))
        return result
    return {
        "accuracy": float(m.accuracy_score(truth_values, predicted_values)),
        "precision": float(
            m.precision_score(truth_values, predicted_values, average="weighted", zero_division=0)
        ),
        "recall": float(
            m.recall_score(truth_values, predicted_values, average="weighted", zero_division=0)
        ),
        "f1": float(
            m.f1_score(truth_values, predicted_values, average="weighted", zero_division=0)
        ),
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_thresholds(
    metrics: dict[str, float | None], thresholds: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """A violation for every metric past its bound."""
    violations = []
    for metric, bound in thresholds.items():
        value = metrics.get(metric)
        if value is None:
            continue
        if "min" in bound and value < bound["min"]:
            violations.append(
                {
                    "column": None,
                    "check": "model_quality",
                    "metric": metric,
                    "message": f"{metric} {value:.4g} is below {bound['min']:g}",
                    "value": value,
                    "threshold": bound["min"],
                }
            )
        if "max" in bound and value > bound["max"]:
            violations.append(
                {
                    "column": None,
                    "check": "model_quality",
                    "metric": metric,
                    "message": f"{metric} {value:.4g} is above {bound['max']:g}",
                    "value": value,
                    "threshold": bound["max"],
                }
            )
    return violations


def evaluate(
    captured: pa.Table,
    labels: pa.Table,
    problem_type: str,
    *,
    positive_label: Any = 1,
    probability_threshold: float | None = None,
    thresholds: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """The report of one model-quality run."""
    if captured.num_rows == 0:
        pairs = join(
            pa.table(
                {
                    "inference_id": pa.array([], pa.string()),
                    "row": pa.array([], pa.int32()),
                    "prediction": pa.array([], pa.float64()),
                }
            ),
            labels,
        )
    else:
        pairs = join(captured, labels)
    metrics = compute(
        pairs,
        problem_type,
        positive_label=positive_label,
        probability_threshold=probability_threshold,
    )
    return {
        "kind": "model_quality",
        "rows": captured.num_rows,
        "labelled": pairs.num_rows,
        "unlabelled": captured.num_rows - pairs.num_rows,
        "problem_type": problem_type,
        "metrics": metrics,
        "violations": check_thresholds(metrics, thresholds or {}),
    }
