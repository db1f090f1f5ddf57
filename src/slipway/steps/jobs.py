"""Built-in steps that run a training, tuning or batch transform job and wait for it.

They need a second worker to run the job while the step waits (``slipway up`` starts two).
The jobs are submitted (and audited) as ``pipeline:<name>``, as the registration step
registers models. An execution that came through the API (started, registered, scheduled
or triggered there: ``Execution.confined``) has its job specs confined as the API confines
a caller's (:mod:`slipway.api.paths`, :mod:`slipway.api.code`): its parameters are a remote
caller's, so a step never reads, writes or runs what the API would refuse — paths outside
the data roots or in another workspace's share, code outside the code roots, uploaded
bundles and allowed modules (400 naming the field, nothing submitted). One started in
process is the machine's own user's, as the embedded SDK is, and is not confined.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from slipway.api.code import confine_training_job, confine_tuning_job
from slipway.api.paths import confine_batch_job
from slipway.batch.spec import BatchJobSpec
from slipway.core.errors import Conflict
from slipway.core.specs import parse_spec
from slipway.pipelines.dsl import step
from slipway.services import Services
from slipway.steps.platform import platform
from slipway.training.spec import TrainingJobSpec
from slipway.tuning.spec import TuningJobSpec


def _actor(services: Services) -> tuple[str, bool]:
    """``pipeline:<name>`` of the execution running the step (``adhoc`` outside one), and
    whether it is confined (it came through the API)."""
    execution = os.environ.get("SLIPWAY_EXECUTION_ID")
    described = services.pipelines.describe(execution) if execution else None
    name = described.pipeline if described is not None else "adhoc"
    return f"pipeline:{name}", described is not None and described.confined


@step(kind="training-job", cache=False)
def training_job(spec: dict[str, Any], timeout_seconds: float = 3600.0) -> dict[str, Any]:
    """Run a training job (see :class:`slipway.training.spec.TrainingJobSpec`); its name
    gets the execution id appended so every execution trains afresh."""
    with platform() as services:
        suffix = (os.environ.get("SLIPWAY_EXECUTION_ID") or "adhoc")[:8]
        name = f"{spec['name']}-{suffix}"[:63]
        parsed = TrainingJobSpec.parse(spec | {"name": name})
        actor, confined = _actor(services)
        if confined:
            confine_training_job(services.settings, parsed, services.registry.workspace)
        services.training.submit(parsed, actor=actor)
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
        parsed = TuningJobSpec.parse(spec | {"name": name})
        actor, confined = _actor(services)
        if confined:
            confine_tuning_job(services.settings, parsed)
        services.tuning.submit(parsed, actor=actor)
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
        parsed = parse_spec(BatchJobSpec, spec | {"name": name})
        actor, confined = _actor(services)
        if confined:
            confine_batch_job(services.settings, parsed, services.registry.workspace)
        services.batch.submit(parsed, actor=actor)
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
