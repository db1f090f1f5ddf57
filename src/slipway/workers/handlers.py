"""What a worker knows how to run: a table from work-item kind to handler.

Capabilities register their handlers here explicitly as they land (pipeline steps,
training jobs, trials, batch chunks, monitor runs), so an unknown kind is found by a test,
not at run time in production. This is where each handler gets the services it uses —
named one by one, never the whole platform — so a capability's runner imports neither
the worker layer nor the service container.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from slipway.batch.runner import ChunkDeps, run_chunk
from slipway.batch.spec import CHUNK_KIND
from slipway.batch.spec import QUEUE as BATCH_QUEUE
from slipway.core.errors import LeaseLost
from slipway.core.work import Handler, WorkContext
from slipway.monitoring.runner import run_monitor
from slipway.monitoring.spec import QUEUE as MONITOR_QUEUE
from slipway.monitoring.spec import RUN_KIND as MONITOR_KIND
from slipway.pipelines.executor import StepDeps, run_step
from slipway.pipelines.orchestrator import QUEUE as PIPELINE_QUEUE
from slipway.pipelines.orchestrator import STEP_KIND
from slipway.runtime.childproc import start_fork_server
from slipway.training.job import TrainingDeps, run_training_job
from slipway.training.spec import JOB_KIND
from slipway.training.spec import QUEUE as JOB_QUEUE
from slipway.tuning.runner import TuningDeps, run_tuning_slot
from slipway.tuning.spec import QUEUE as TRIAL_QUEUE
from slipway.tuning.spec import RUNNER_KIND

if TYPE_CHECKING:
    from slipway.services import Services

LEASE_CHECK_SECONDS = 0.05
"""How often the self-test's sleep asks whether its lease is lost."""


def _echo(context: WorkContext) -> dict[str, Any]:
    """The pool's self-test: returns its payload, optionally after ``sleep`` seconds
    (with ``heed_lease``, stopping as soon as ``lease_lost()`` says so, as every
    long-running handler does; without, like user code that never asks), or raises
    ``fail``."""
    seconds = float(context.payload.get("sleep", 0))
    if context.payload.get("heed_lease"):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if context.lease_lost():
                raise LeaseLost(f"work item {context.item_id}: lease lost")
            time.sleep(min(LEASE_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))
    else:
        time.sleep(seconds)
    if context.payload.get("fail"):
        raise RuntimeError(str(context.payload["fail"]))
    return {"echo": context.payload, "attempt": context.attempt}


def handlers(services: Services) -> dict[str, Handler]:
    """Every kind's handler, each given the services it uses."""
    s = services
    return {
        "system.echo": _echo,
        STEP_KIND: partial(run_step, deps=StepDeps(s.settings, s.db, s.pipelines)),
        JOB_KIND: partial(
            run_training_job,
            deps=TrainingDeps(s.settings, s.db, s.artifacts, s.events, s.registry),
        ),
        RUNNER_KIND: partial(
            run_tuning_slot, deps=TuningDeps(s.settings, s.db, s.events, s.registry)
        ),
        CHUNK_KIND: partial(run_chunk, deps=ChunkDeps(s.settings, s.db, s.events, s.registry)),
        MONITOR_KIND: partial(run_monitor, monitoring=s.monitoring),
    }


# The kinds a worker can run (without assembling a platform to ask).
KINDS = frozenset({"system.echo", STEP_KIND, JOB_KIND, RUNNER_KIND, CHUNK_KIND, MONITOR_KIND})

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
