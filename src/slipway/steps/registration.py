"""The built-in step that logs a model to MLflow and registers it as a model version, with
the pipeline execution in its lineage and the comparison as its registration policy."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from slipway.pipelines.dsl import step
from slipway.pipelines.values import model_flavor
from slipway.registry.lineage import Lineage, code_revision
from slipway.registry.models import ApprovalStatus
from slipway.steps.platform import platform


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
    with platform() as services:
        experiment_id = services.registry.mlflow.experiment_id(
            experiment, services.settings.artifact_root
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
            pipeline = services.pipelines.describe(execution).pipeline
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
