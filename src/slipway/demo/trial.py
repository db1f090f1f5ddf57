"""One tuning trial of the demo's model: LightGBM on the training window, scored by ROC AUC
on its last fifth (later in time, like the holdout it will face)."""

from __future__ import annotations

from typing import Any

import fsspec
import pandas as pd

from slipway.demo.data import LABEL, MODEL_FEATURES


def split_in_time(frame: pd.DataFrame, fraction: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    ordered = frame.sort_values("event_time")
    cut = int(len(ordered) * fraction)
    return ordered.iloc[:cut], ordered.iloc[cut:]


def classifier(params: dict[str, Any]) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=int(params.get("n_estimators", 100)),
        learning_rate=float(params.get("learning_rate", 0.1)),
        num_leaves=int(params.get("num_leaves", 31)),
        min_child_samples=int(params.get("min_child_samples", 20)),
        subsample=0.8,
        subsample_freq=1,
        n_jobs=1,
        verbose=-1,
    )


def objective(params: dict[str, Any], trial: Any) -> float:
    """ROC AUC of ``params`` on the later part of the training data."""
    from sklearn.metrics import roc_auc_score

    with fsspec.open(params["data"], "rb") as handle:
        frame = pd.read_parquet(handle)
    fit, check = split_in_time(frame)
    model = classifier(params).fit(fit[MODEL_FEATURES], fit[LABEL])
    auc = float(roc_auc_score(check[LABEL], model.predict_proba(check[MODEL_FEATURES])[:, 1]))
    trial.report(0, auc)
    return auc
