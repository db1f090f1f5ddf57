"""The demo's training pipeline: a point-in-time training set from the feature store,
LightGBM tuned with Optuna, evaluated on a later holdout, gated on ROC AUC, registered.

Its policy, stated once: a version whose holdout ROC AUC reaches ``min_auc`` is registered
(anything below that floor is not registered at all). The first training approves it (the
pipeline's approval, audited like any other). Retraining also compares the new model with
the one the endpoint serves, both scored on the same most recent labelled month: a
retrained model that does not beat the champion's ROC AUC by ``min_improvement`` is
registered Rejected, with both figures and the reason, and is never deployed.
"""

from __future__ import annotations

import os
from typing import Any, cast

import pandas as pd

from slipway.core.settings import load_settings
from slipway.demo.data import LABEL, MODEL_FEATURES, VIEW_NAME
from slipway.demo.trial import classifier
from slipway.pipelines.dsl import Cond, condition, pipeline, step
from slipway.services import Services
from slipway.steps import compare_models, evaluate, register_model, tuning_job

MODEL = "flight-delay"
ENTITY_COLUMNS = ["flight_id", "origin", "tailnum", "hour", "distance", "delayed", "event_time"]


@step(cache=False)
def training_data(start: str, end: str) -> dict[str, Any]:
    """Flights scheduled in ``[start, end)`` with the feature view's columns (weather and
    plane features as of their hour, and the view's transformations); written to the
    artifact store (tuning trials read it from there). The definition names the view's
    version, so the registered model is bound to it."""
    services = Services.open(load_settings())
    try:
        sql = (
            "SELECT flight_id, origin, tailnum, hour, distance, delayed, event_time FROM flights "
            f"WHERE event_time >= TIMESTAMPTZ '{pd.Timestamp(start, tz='UTC').isoformat()}' "
            f"AND event_time < TIMESTAMPTZ '{pd.Timestamp(end, tz='UTC').isoformat()}'"
        )
        built = services.feature_views.training_set(
            VIEW_NAME, services.features.query(sql), timestamp_column="event_time"
        )
        frame = built.data.to_pandas().dropna(subset=MODEL_FEATURES)
        execution = os.environ.get("SLIPWAY_EXECUTION_ID", "adhoc")
        key = f"demo/training-sets/{execution}-{start}-{end}.parquet"
        with services.artifacts.open_write(key) as handle:
            frame.to_parquet(handle)
        # The entity rows alone, for the lineage: with the Delta versions recorded beside
        # them, the exact training set can be rebuilt later (a monitor's baseline does).
        entities_key = f"demo/training-sets/{execution}-{start}-{end}-entities.parquet"
        with services.artifacts.open_write(entities_key) as handle:
            frame[ENTITY_COLUMNS].to_parquet(handle)
        definition = built.definition.to_dict() | {"entities": services.artifacts.uri(entities_key)}
        return {"uri": services.artifacts.uri(key), "rows": len(frame), "definition": definition}
    finally:
        services.close()


@step(cache=False)
def fit(data: dict[str, Any], best: dict[str, Any], shuffle_labels: bool = False) -> Any:
    """The tuned classifier on the training set; ``shuffle_labels`` trains it on labels in
    a shuffled order instead — a model that learned nothing, to show the gate refusing it."""
    frame = pd.read_parquet(data["uri"])
    model = classifier(best.get("params", {}))
    labels = frame[LABEL]
    if shuffle_labels:
        labels = labels.sample(frac=1.0, random_state=0).set_axis(labels.index)
    model.fit(frame[MODEL_FEATURES], labels)
    return model


@step(cache=False)
def holdout(data: dict[str, Any]) -> pd.DataFrame:
    frame = pd.read_parquet(data["uri"])
    return frame[[*MODEL_FEATURES, LABEL]]


def _train(
    train_start: str,
    train_end: str,
    holdout_end: str,
    min_auc: float,
    trials: int,
    parallel: int,
    model_name: str,
    reference: str = "",
    min_improvement: float = 0.0,
    shuffle_labels: bool = False,
) -> None:
    train = training_data(train_start, train_end)
    later = training_data(train_end, holdout_end)
    best = tuning_job(
        {
            "name": "flight-delay-tuning",
            "trial": "slipway.demo.trial:objective",
            "objective_metric": "roc_auc",
            "direction": "maximize",
            "parameter_ranges": {
                "learning_rate": {"type": "continuous", "min": 0.02, "max": 0.3, "scale": "log"},
                "num_leaves": {"type": "integer", "min": 8, "max": 64},
                "n_estimators": {"type": "integer", "min": 40, "max": 160},
                "min_child_samples": {"type": "integer", "min": 10, "max": 80},
            },
            "static_parameters": {"data": train["uri"]},
            "max_jobs": trials,
            "max_parallel_jobs": parallel,
            "seed": 13,
            "experiment": "flight-delay-tuning",
        }
    )
    model = fit(train, best, shuffle_labels)
    rows = holdout(later)
    metrics = evaluate(model, rows, LABEL)
    comparison = None
    if reference:  # champion/challenger on the same month, in the same step
        comparison = compare_models(model, rows, LABEL, reference, "roc_auc", min_improvement)
    # A step output compared with a parameter is a Cond at trace time (see the DSL).
    with condition(cast(Cond, metrics["roc_auc"] >= min_auc)):
        register_model(
            model,
            model_name,
            metrics,
            "Approved",
            None,
            train["definition"],
            "flight-delay",
            comparison,
            None,
            "probabilities",  # served as scores: ROC AUC per variant, from what was served
            "demo: flight operations analytics",
            "Ranks scheduled departures from New York airports by the risk of arriving more"
            " than 15 minutes late, from weather and aircraft; for planning staff and gates,"
            " not for telling passengers.",
        )


@pipeline(name="flight-delay-train")
def train_flight_delay(
    train_start: str = "2013-01-01",
    train_end: str = "2013-06-01",
    holdout_end: str = "2013-07-01",
    min_auc: float = 0.6,
    trials: int = 8,
    parallel: int = 2,
    model_name: str = MODEL,
) -> None:
    _train(train_start, train_end, holdout_end, min_auc, trials, parallel, model_name)


@pipeline(name="flight-delay-retrain")
def retrain_flight_delay(
    train_start: str = "2013-01-01",
    train_end: str = "2013-11-01",
    holdout_end: str = "2013-12-01",
    min_auc: float = 0.6,
    trials: int = 8,
    parallel: int = 2,
    model_name: str = MODEL,
    reference: str = f"endpoint:{MODEL}",
    min_improvement: float = 0.0,
    shuffle_labels: bool = False,
) -> None:
    """The same training on every labelled month up to October, so it has seen summer
    and autumn: what the drift trigger starts. The result must beat what the endpoint
    serves on the most recent labelled month, November (``reference``,
    ``min_improvement``), or it is registered Rejected."""
    _train(
        train_start,
        train_end,
        holdout_end,
        min_auc,
        trials,
        parallel,
        model_name,
        reference,
        min_improvement,
        shuffle_labels,
    )
