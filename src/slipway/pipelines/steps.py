"""Built-in steps: evaluation, model registration, training, tuning and batch jobs.

They are ordinary steps (use them in a pipeline like your own) that reach the platform
from inside the step process: a step runs on a worker configured like the control plane,
so :func:`slipway.core.settings.load_settings` finds the same backends.

``training_job``, ``tuning_job`` and ``batch_transform`` submit a job and wait for it, so
they need a second worker to run the job while the step waits (``slipway up`` starts two).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pandas as pd

from slipway.core.errors import Conflict, InvalidInput
from slipway.core.settings import load_settings
from slipway.pipelines.dsl import step
from slipway.pipelines.values import model_flavor
from slipway.registry.lineage import Lineage, code_revision
from slipway.registry.models import ApprovalStatus
from slipway.services import Services


def _platform() -> Services:
    return Services.open(load_settings())


@step(kind="evaluation")
def evaluate(model: Any, data: pd.DataFrame, label: str) -> dict[str, float]:
    """Metrics of ``model`` on ``data`` — for a classifier accuracy, precision, recall, F1
    and, from its scores, ROC AUC and log loss; for a regressor MAE, RMSE, R² — as a dict a
    condition can gate on (``metrics["roc_auc"] >= 0.75``)."""
    from slipway.evaluation.compare import score
    from slipway.evaluation.predictors import Predictor

    return score(Predictor(model, "candidate"), data, label)


@step(kind="processing", cache=False)  # traffic keeps arriving: never reuse
def labelled_traffic(endpoint: str, label: str = "label", hours: float = 24.0 * 30) -> pd.DataFrame:
    """What ``endpoint`` was sent in the last ``hours`` and what really happened: the
    captured model inputs (production traffic, after enrichment) joined with their ground
    truth by (inference id, row), one row each, the label in column ``label``. Evaluation
    data for :func:`compare_models` that is the traffic the champion actually faces."""
    from datetime import timedelta

    import duckdb

    from slipway.core.clock import utcnow
    from slipway.monitoring import capture, ground_truth

    if not 0 < hours <= 24 * 366:
        raise InvalidInput("hours must be in (0, 8784]", field="hours")
    services = _platform()
    try:
        services.endpoints.describe(endpoint)  # NotFound for an unknown endpoint
        end = utcnow()
        start = end - timedelta(hours=hours)
        captured = capture.read_window(services.artifacts, endpoint, start, end, identity=True)
        labels = ground_truth.read(services.artifacts, endpoint, start)
    finally:
        services.close()
    identity = {"inference_id", "row", "time", "variant", "model_version", "prediction"}
    features = [c for c in captured.column_names if c not in identity]
    if label in features:
        raise InvalidInput(f"{label!r} is a model input; name the label otherwise", field="label")
    if captured.num_rows == 0:
        return pd.DataFrame(columns=[*features, label])
    con = duckdb.connect()
    con.register("captured", captured)
    con.register("labels", labels)
    selected = ", ".join(f'c."{f}"' for f in features)
    # A request captured twice (a retried write) counts once; numeric labels as numbers.
    frame = con.sql(
        f"SELECT {selected}, coalesce(l.label_number::VARCHAR, l.label) AS label_text,"
        " l.label_number FROM captured c JOIN labels l USING (inference_id, row)"
        " QUALIFY row_number() OVER (PARTITION BY c.inference_id, c.row ORDER BY c.time) = 1"
    ).df()
    numeric = frame["label_number"].notna().all()
    frame[label] = frame["label_number"] if numeric else frame["label_text"]
    if numeric and (frame[label] % 1 == 0).all():
        frame[label] = frame[label].astype("int64")
    out: pd.DataFrame = frame.drop(columns=["label_text", "label_number"])
    return out


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
    services = _platform()
    try:
        found = resolve_reference(services, reference)
        champion = load_registered(services, *found) if found else None
        result = compare(Predictor(model, "candidate"), champion, data, label, rule)
        return result.to_dict() | {"reference_ref": reference}
    finally:
        services.close()


@step(kind="register-model", cache=False)
def register_model(
    model: Any,
    name: str,
    metrics: dict[str, float] | None = None,
    approval_status: str = ApprovalStatus.PENDING.value,
    input_example: pd.DataFrame | None = None,
    training_set: dict[str, Any] | None = None,
    experiment: str = "pipelines",
    comparison: dict[str, Any] | None = None,
    reports: dict[str, Any] | None = None,
    output: str = "label",
    owner: str = "",
    intended_use: str = "",
) -> dict[str, Any]:
    """Log ``model`` in an MLflow run (with its metrics) and register it as a version of
    ``name``, with the pipeline execution and step in its lineage. ``approval_status``
    Approved records the pipeline's own approval (its policy), audited like any other.

    ``comparison`` (from :func:`compare_models`) is the registration policy: it goes into
    the lineage and the run (``reference_<metric>``), and a candidate that did not beat
    its reference is registered Rejected, with the comparison's reason as the comment, so
    it can never be deployed and anyone can see why.

    ``reports`` are what other steps computed on the evaluation set, by name (for example
    ``{"bias": ..., "importance": ...}``): kept in the lineage, where the model card reads
    them. ``output`` is what the version returns when served: ``label``, ``probabilities``
    or ``both`` (see :mod:`slipway.registry.outputs`); ``owner`` and ``intended_use`` go on
    its model card."""
    import mlflow
    import mlflow.lightgbm
    import mlflow.sklearn

    status = ApprovalStatus.parse(approval_status)
    comment = None
    if comparison is not None and not comparison.get("passed", False):
        status, comment = ApprovalStatus.REJECTED, str(comparison.get("reason", "rejected"))
    if input_example is None and hasattr(model, "feature_names_in_"):
        # A model fitted on a DataFrame knows its columns: enough for a signature.
        input_example = pd.DataFrame(
            [[0.0] * len(model.feature_names_in_)], columns=list(model.feature_names_in_)
        )
    services = _platform()
    try:
        client = services.registry.mlflow.client
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id
            if found
            else client.create_experiment(
                experiment,
                artifact_location=f"{services.settings.artifact_root.rstrip('/')}/mlflow/{experiment}",
            )
        )
        mlflow.set_tracking_uri(services.registry.mlflow.uri)
        execution, step_name = (
            os.environ.get("SLIPWAY_EXECUTION_ID"),
            os.environ.get("SLIPWAY_STEP"),
        )
        with mlflow.start_run(
            experiment_id=experiment_id, tags={"slipway.execution": execution or ""}
        ) as run:
            for key, value in (metrics or {}).items():
                mlflow.log_metric(key, value)
            for key, value in ((comparison or {}).get("reference") or {}).items():
                if isinstance(value, int | float):
                    mlflow.log_metric(f"reference_{key}", value)
            # The flavor's own requirements, stated: MLflow would otherwise infer them by
            # loading the model in a subprocess (~7 s a model, and the model's code runs),
            # which finds nothing more for a plain library model.
            requirements = mlflow.sklearn.get_default_pip_requirements()
            flavor: Any = mlflow.sklearn
            if model_flavor(model) == "lightgbm":  # its scikit-learn API, saved with skops
                flavor = mlflow.lightgbm
                requirements += mlflow.lightgbm.get_default_pip_requirements(include_skops=True)
            flavor.log_model(
                model,
                name="model",
                input_example=input_example,
                pip_requirements=sorted(set(requirements)),
            )
        pipeline = None
        if execution:
            pipeline = services.pipelines.describe(execution)["pipeline"]
        lineage = Lineage(
            run_id=run.info.run_id,
            pipeline=pipeline,
            pipeline_execution=execution,
            pipeline_step=step_name,
            training_set=training_set,
            code_revision=code_revision(),
            data_digest=(training_set or {}).get("entity_digest"),
            comparison=comparison,
            reports=reports,
        )
        actor = f"pipeline:{pipeline or 'adhoc'}"
        version = services.registry.register(
            name,
            f"runs:/{run.info.run_id}/model",
            actor=actor,
            lineage=lineage,
            output=output,
            owner=owner,
            intended_use=intended_use,
        )
        if status is not ApprovalStatus.PENDING:
            version = services.registry.set_approval(
                name,
                version.version,
                status,
                actor=actor,
                comment=comment or f"set by pipeline {pipeline} on registration",
            )
        return {
            "name": name,
            "version": version.version,
            "approval_status": version.approval_status.value,
            "run_id": run.info.run_id,
            "reason": comment or "",
        }
    finally:
        services.close()


@step(kind="training-job", cache=False)
def training_job(spec: dict[str, Any], timeout_seconds: float = 3600.0) -> dict[str, Any]:
    """Run a training job (see :class:`slipway.training.spec.TrainingJobSpec`); its name
    gets the execution id appended so every execution trains afresh."""
    services = _platform()
    try:
        suffix = (os.environ.get("SLIPWAY_EXECUTION_ID") or "adhoc")[:8]
        name = f"{spec['name']}-{suffix}"[:63]
        services.training.submit(spec | {"name": name})
        job = services.training.wait(name, timeout=timeout_seconds)
        if job.state != "Succeeded":
            raise RuntimeError(f"training job {name} ended {job.state}: {job.error}")
        return {"job": name, "model_key": job.model_key, "run_id": job.mlflow_run_id}
    finally:
        services.close()


@step(kind="tuning-job", cache=False)
def tuning_job(spec: dict[str, Any], timeout_seconds: float = 3600.0) -> dict[str, Any]:
    """Run a tuning job and return its best trial (parameters, value, MLflow run)."""
    services = _platform()
    try:
        suffix = (os.environ.get("SLIPWAY_EXECUTION_ID") or "adhoc")[:8]
        name = f"{spec['name']}-{suffix}"[:63]
        services.tuning.submit(spec | {"name": name})
        job = services.tuning.wait(name, timeout=timeout_seconds)
        if job.state != "Completed" or job.best is None:
            raise RuntimeError(f"tuning job {name} ended {job.state}: {job.error}")
        return {"job": name, **job.best}
    finally:
        services.close()


@step(kind="batch-transform", cache=False)
def batch_transform(spec: dict[str, Any], timeout_seconds: float = 3600.0) -> dict[str, Any]:
    """Run a batch transform job (see :class:`slipway.batch.spec.BatchJobSpec`) and return
    its name, state, rows scored, Kafka messages delivered and manifest. Its name gets the
    execution id appended so every execution scores afresh; a job still running when
    ``timeout_seconds`` pass is stopped, so a failed step leaves no job behind."""
    services = _platform()
    try:
        execution = os.environ.get("SLIPWAY_EXECUTION_ID")
        name = f"{spec['name']}-{(execution or 'adhoc')[:8]}"[:63]
        pipeline = services.pipelines.describe(execution)["pipeline"] if execution else None
        services.batch.submit(spec | {"name": name}, actor=f"pipeline:{pipeline or 'adhoc'}")
        try:
            job = services.batch.wait(name, timeout=timeout_seconds)
        except TimeoutError:
            with contextlib.suppress(Conflict):  # it ended just now
                services.batch.stop(name)
            raise
        if job.state != "Completed":
            raise RuntimeError(f"batch job {name} ended {job.state}: {job.error}")
        return {
            "name": name,
            "state": job.state,
            "rows_done": job.rows_done,
            "delivered": job.delivered,
            "manifest": job.manifest,
        }
    finally:
        services.close()
