"""The training capability's resource: a :class:`TrainingJob` as services return it and
the API sends it. Its request body is :class:`~slipway.training.spec.TrainingJobSpec`,
which the job carries back as ``spec``."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from slipway.core.resource import Resource
from slipway.training.spec import TrainingJobSpec


class TrainingJob(Resource):
    """A training job: its spec, state, attempts, MLflow run and where its model landed.

    ``state`` is Pending, Running, Succeeded, Failed or Stopped; ``attempts`` counts the
    runs started (a worker that died under the job, or a retried failure, adds one) and
    ``failures`` the ones its own code failed.
    """

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "state",
        "attempts",
        "resumed_from_checkpoint",
        "mlflow_run_id",
        "created_at",
        "finished_at",
    )

    name: str
    state: str
    attempts: int = 0
    failures: int = 0
    mlflow_run_id: str | None = None
    model_key: str | None = None
    output_key: str | None = None
    resumed_from_checkpoint: bool = False
    spec: TrainingJobSpec
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


__all__ = ["TrainingJob"]
