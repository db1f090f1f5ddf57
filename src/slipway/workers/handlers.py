"""What a worker knows how to run: a table from work-item kind to handler.

Capabilities register their handlers here explicitly as they land (pipeline steps,
training jobs, trials, batch chunks, monitor runs), so an unknown kind is found by a test,
not at run time in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slipway.batch.runner import run_chunk
from slipway.batch.spec import CHUNK_KIND
from slipway.batch.spec import QUEUE as BATCH_QUEUE
from slipway.monitoring.runner import run_monitor
from slipway.monitoring.spec import QUEUE as MONITOR_QUEUE
from slipway.monitoring.spec import RUN_KIND as MONITOR_KIND
from slipway.pipelines.executor import run_step
from slipway.pipelines.orchestrator import QUEUE as PIPELINE_QUEUE
from slipway.pipelines.orchestrator import STEP_KIND
from slipway.runtime.childproc import start_fork_server
from slipway.training.job import run_training_job
from slipway.training.spec import JOB_KIND
from slipway.training.spec import QUEUE as JOB_QUEUE
from slipway.tuning.runner import run_tuning_slot
from slipway.tuning.spec import QUEUE as TRIAL_QUEUE
from slipway.tuning.spec import RUNNER_KIND
from slipway.workers.context import Handler, WorkContext

if TYPE_CHECKING:
    from slipway.services import Services


def _echo(context: WorkContext) -> dict[str, Any]:
    """The pool's self-test: returns its payload, optionally after ``sleep`` seconds."""
    time.sleep(float(context.payload.get("sleep", 0)))
    if context.payload.get("fail"):
        raise RuntimeError(str(context.payload["fail"]))
    return {"echo": context.payload, "attempt": context.attempt}


HANDLERS: dict[str, Handler] = {
    "system.echo": _echo,
    STEP_KIND: run_step,
    JOB_KIND: run_training_job,
    RUNNER_KIND: run_tuning_slot,
    CHUNK_KIND: run_chunk,
    MONITOR_KIND: run_monitor,
}

# The queues a default worker serves; capabilities add theirs as they land.
DEFAULT_QUEUES: tuple[str, ...] = (
    "system",
    PIPELINE_QUEUE,
    JOB_QUEUE,
    TRIAL_QUEUE,
    BATCH_QUEUE,
    MONITOR_QUEUE,
)


def _fork_server(_services: Services) -> None:
    start_fork_server()


def _open_mlflow(services: Services) -> None:
    # The first call opens MLflow's store (its schema check takes seconds on SQLite).
    services.registry.mlflow.client.get_experiment_by_name("Default")


# One-time costs a long-running worker pays at start, per queue it serves, instead of
# charging them to its first item: the fork server's imports, MLflow's store.
WARM_UPS: dict[str, tuple[Callable[[Services], None], ...]] = {
    PIPELINE_QUEUE: (_fork_server,),
    JOB_QUEUE: (_fork_server, _open_mlflow),
    TRIAL_QUEUE: (_fork_server, _open_mlflow),
}
