"""Built-in steps that run a training, tuning or batch transform job and wait for it.

They need a second worker to run the job while the step waits (``slipway up`` starts two).
The jobs are submitted (and audited) as ``pipeline:<name>``, as the registration step
registers models.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from slipway.core.errors import Conflict
from slipway.pipelines.dsl import step
from slipway.services import Services
from slipway.steps.platform import platform


def _actor(services: Services) -> str:
    """``pipeline:<name>`` of the execution running the step (``adhoc`` outside one)."""
    execution = os.environ.get("SLIPWAY_EXECUTION_ID")
    pipeline = services.pipelines.describe(execution).pipeline if execution else None
    return f"pipeline:{pipeline or 'adhoc'}"


@step(kind="training-job", cache=False)
def training_job(spec: dict[str, Any], timeout_seconds: float = 3600.0) -> dict[str, Any]:
    """Run a training job (see :class:`slipway.training.spec.TrainingJobSpec`); its name
    gets the execution id appended so every execution trains afresh."""
    with platform() as services:
        suffix = (os.environ.get("SLIPWAY_EXECUTION_ID") or "adhoc")[:8]
        name = f"{spec['name']}-{suffix}"[:63]
        services.training.submit(spec | {"name": name}, actor=_actor(services))
        job = services.training.wait(name, timeout=timeout_seconds)
        if job.state != "Succeeded":
            raise RuntimeError(f"training job {name} ended {job.state}: {job.error}")
        return {"job": name, "model_key": job.model_key, "run_id": job.mlflow_run_id}


@step(kind="tuning-job", cache=False)
def tuning_job(spec: dict[str, Any], timeout_seconds: float = 3600.0) -> dict[str, Any]:
    """Run a tuning job and return its best trial (parameters, value, MLflow run)."""
    with platform() as services:
        suffix = (os.environ.get("SLIPWAY_EXECUTION_ID") or "adhoc")[:8]
        name = f"{spec['name']}-{suffix}"[:63]
        services.tuning.submit(spec | {"name": name}, actor=_actor(services))
        job = services.tuning.wait(name, timeout=timeout_seconds)
        if job.state != "Completed" or job.best is None:
            raise RuntimeError(f"tuning job {name} ended {job.state}: {job.error}")
        return {"job": name, **job.best.model_dump(mode="json")}


@step(kind="batch-transform", cache=False)
def batch_transform(spec: dict[str, Any], timeout_seconds: float = 3600.0) -> dict[str, Any]:
    """Run a batch transform job (see :class:`slipway.batch.spec.BatchJobSpec`) and return
    its name, state, rows scored, Kafka messages delivered and manifest. Its name gets the
    execution id appended so every execution scores afresh; a job still running when
    ``timeout_seconds`` pass is stopped, so a failed step leaves no job behind."""
    with platform() as services:
        execution = os.environ.get("SLIPWAY_EXECUTION_ID")
        name = f"{spec['name']}-{(execution or 'adhoc')[:8]}"[:63]
        actor = _actor(services)
        services.batch.submit(spec | {"name": name}, actor=actor)
        try:
            job = services.batch.wait(name, timeout=timeout_seconds)
        except TimeoutError:
            with contextlib.suppress(Conflict):  # it ended just now
                services.batch.stop(name, actor=actor)
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
