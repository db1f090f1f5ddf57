"""Running a training job on a worker, with SageMaker's script-mode contract.

The job's folder mirrors ``/opt/ml``: ``input/data/<channel>``, ``model``,
``output/data`` and ``checkpoints``. The script sees ``SM_MODEL_DIR``,
``SM_CHANNEL_<NAME>``, ``SM_CHANNELS``, ``SM_HPS``, ``SM_OUTPUT_DATA_DIR``,
``SM_CHECKPOINT_DIR``, ``SM_NUM_CPUS``, the hyperparameters again as ``--name value``
arguments, and ``MLFLOW_TRACKING_URI`` / ``MLFLOW_RUN_ID`` of the run created for the job
(``mlflow.start_run()`` in the script joins it). Checkpoints are synced to the artifact
store while it runs and restored on a retry; the model and output folders are uploaded
when it succeeds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import LeaseLost
from slipway.core.events import EventLog
from slipway.core.logsink import log_writer
from slipway.core.settings import Settings
from slipway.core.work import PermanentFailure, WorkContext
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_resource, validate_workspace
from slipway.registry.service import Registry
from slipway.runtime import bundles
from slipway.runtime.childproc import run_child
from slipway.tracking.config import user_tracking_env
from slipway.training.checkpoints import CheckpointSync
from slipway.training.spec import TERMINAL, TrainingJobSpec, job_key, job_log_id
from slipway.training.tables import TrainingJobRow


@dataclass(frozen=True)
class TrainingDeps:
    """What running a training job uses of the platform, given once when it is assembled
    (:func:`slipway.workers.handlers.handlers`)."""

    settings: Settings
    db: Database
    artifacts: ArtifactStore
    events: EventLog
    registry: Registry


class JobFailed(PermanentFailure):
    """The job's script failed and its retries are spent."""


class JobAttemptFailed(Exception):
    """The job's script failed; the queue retries it after the backoff."""


def _argv(spec: TrainingJobSpec, source: Path | None) -> list[str]:
    args: list[str] = []
    for key, value in spec.hyperparameters.items():
        args += [f"--{key}", json.dumps(value) if isinstance(value, bool) else str(value)]
    if spec.script:
        assert source is not None
        return [sys.executable, str(source / spec.script), *args]
    if spec.module:
        return [sys.executable, "-m", spec.module, *args]
    assert spec.function
    return [
        sys.executable,
        "-m",
        "slipway.training.call",
        spec.function,
        json.dumps(spec.hyperparameters),
    ]


def _prepare(root: Path, spec: TrainingJobSpec) -> dict[str, Path]:
    if root.exists():
        shutil.rmtree(root)  # a retry starts from a clean folder (checkpoints come back)
    dirs = {
        "model": root / "model",
        "output": root / "output" / "data",
        "checkpoints": root / "checkpoints",
        "input": root / "input" / "data",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    for channel, source in spec.channels.items():
        src = Path(source).expanduser()
        target = dirs["input"] / channel
        if src.is_dir():
            shutil.copytree(src, target)
        elif src.is_file():
            target.mkdir()
            shutil.copy2(src, target / src.name)
        else:
            raise JobFailed(f"channel {channel!r}: no file or folder at {source!r}")
    return dirs


def run_training_job(context: WorkContext, deps: TrainingDeps) -> dict[str, Any]:
    """The ``training.job`` work handler."""
    name = context.payload["name"]
    # Items queued before workspaces name none: they were the default workspace's.
    workspace = validate_workspace(context.payload.get("workspace", DEFAULT_WORKSPACE))
    key = (workspace, name)
    with deps.db.write() as session:
        row = session.get(TrainingJobRow, key)
        if row is None or row.state in TERMINAL:
            return {"ignored": True}
        row.state, row.attempts, row.started_at = "Running", context.attempt, utcnow()
        spec = TrainingJobSpec.model_validate(row.spec)
        run_id = row.mlflow_run_id
    if run_id is None:
        run_id = _create_run(deps, spec, workspace)
        with deps.db.write() as session:
            job = session.get(TrainingJobRow, key)
            assert job is not None
            job.mlflow_run_id = run_id
    files = job_key(name, workspace)  # jobs/<name>, or workspaces/<ws>/jobs/<name>
    root = deps.settings.home / files / f"attempt-{context.attempt}"
    dirs = _prepare(root, spec)
    sync = CheckpointSync(
        deps.artifacts,
        f"{files}/checkpoints",
        dirs["checkpoints"],
        spec.checkpoint_sync_seconds,
    )
    resumed = sync.restore()
    source = _source(deps, spec, root)
    channels = sorted(spec.channels)
    env = (
        os.environ
        | deps.settings.as_env()
        | {
            "PYTHONUNBUFFERED": "1",
            "SM_MODEL_DIR": str(dirs["model"]),
            "SM_OUTPUT_DATA_DIR": str(dirs["output"]),
            "SM_CHECKPOINT_DIR": str(dirs["checkpoints"]),
            "SM_CHANNELS": json.dumps(channels),
            "SM_HPS": json.dumps(spec.hyperparameters),
            "SM_NUM_CPUS": str(_cpus(spec.cpus)),
            "SM_CURRENT_HOST": "algo-1",
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SLIPWAY_JOB_NAME": name,
            "SLIPWAY_JOB_ATTEMPT": str(context.attempt),
            "MLFLOW_RUN_ID": run_id,
        }
        | user_tracking_env(deps.settings, workspace)
    )
    env |= {f"SM_CHANNEL_{c.upper().replace('-', '_')}": str(dirs["input"] / c) for c in channels}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")])

    log = log_writer(deps.db, job_log_id(name, workspace), "job", context.attempt)

    def stop_requested() -> bool:
        with deps.db.session() as session:
            job = session.get(TrainingJobRow, key)
            return context.lease_lost() or job is None or job.state == "Stopped"

    sync.start()
    try:
        outcome = run_child(
            _argv(spec, source),
            env=env,
            log=log,
            cwd=str(source or root),
            timeout=spec.max_run_seconds,
            memory_mb=spec.memory_mb,
            cpus=spec.cpus,
            should_stop=stop_requested,
        )
    finally:
        sync.stop()
    if outcome.stopped == "stopped" and not _stopped_by_user(deps, key):
        # The lease is gone (expired, or this worker is stopping and hands the job back):
        # the next holder resumes from the checkpoints synced so far; write nothing here.
        raise LeaseLost(f"training job {name} interrupted: lease lost")
    ok = outcome.returncode == 0 and outcome.stopped is None
    return _settle(
        deps, spec, workspace, run_id, dirs, resumed, ok, outcome.stopped, outcome.returncode
    )


def _stopped_by_user(deps: TrainingDeps, key: tuple[str, str]) -> bool:
    with deps.db.session() as session:
        job = session.get(TrainingJobRow, key)
        return job is None or job.state == "Stopped"


def _cpus(wanted: float | None) -> int:
    """What ``SM_NUM_CPUS`` says: the cores the job is pinned to, or all it may use."""
    available = len(os.sched_getaffinity(0))
    return available if wanted is None else min(available, max(1, math.ceil(wanted)))


def _source(deps: TrainingDeps, spec: TrainingJobSpec, root: Path) -> Path | None:
    """The folder the job's code runs from: a code bundle unpacked into the attempt's own
    folder (the job may write beside its code without touching another job's), or the
    host folder the spec names."""
    if spec.source_dir is None:
        return None
    if bundles.is_bundle(spec.source_dir):
        return bundles.unpack(deps.artifacts, spec.source_dir, root / "code", field="source_dir")
    return Path(spec.source_dir).expanduser().resolve()


def _create_run(deps: TrainingDeps, spec: TrainingJobSpec, workspace: str) -> str:
    """The job's MLflow run, in its experiment of the job's workspace."""
    store = deps.registry.mlflow.in_workspace(workspace)
    experiment_id = store.experiment_id(spec.experiment, deps.settings.artifact_root)
    tags = {"slipway.job": spec.name}
    if spec.source_dir and bundles.is_bundle(spec.source_dir):
        tags["slipway.code_bundle"] = spec.source_dir  # the code's digest, in the run's lineage
    with store.scope():
        run = store.client.create_run(experiment_id, run_name=spec.name, tags=tags)
        for key, value in spec.hyperparameters.items():
            store.client.log_param(run.info.run_id, key, value)
    return str(run.info.run_id)


def _settle(
    deps: TrainingDeps,
    spec: TrainingJobSpec,
    workspace: str,
    run_id: str,
    dirs: dict[str, Path],
    resumed: bool,
    ok: bool,
    stopped: str | None,
    code: int | None,
) -> dict[str, Any]:
    store = deps.registry.mlflow.in_workspace(workspace)
    name = spec.name
    key = (workspace, name)
    model_key = output_key = None
    if ok:
        if any(dirs["model"].iterdir()):
            model_key = f"{job_key(name, workspace)}/model"
            deps.artifacts.put_dir(model_key, dirs["model"])
        if any(dirs["output"].iterdir()):
            output_key = f"{job_key(name, workspace)}/output"
            deps.artifacts.put_dir(output_key, dirs["output"])
    with deps.db.session() as session:
        current = session.get(TrainingJobRow, key)
        assert current is not None
        failures = current.failures
    final = ok or stopped == "stopped" or failures + 1 > spec.retries
    if final:
        # The run ends before the job does, so whoever sees the job end sees the run end.
        with store.scope():
            store.client.set_terminated(
                run_id, "FINISHED" if ok else "KILLED" if stopped else "FAILED"
            )
    with deps.db.write() as session:
        row = session.get(TrainingJobRow, key)
        assert row is not None
        row.resumed_from_checkpoint = row.resumed_from_checkpoint or resumed
        if ok:
            row.state, row.model_key, row.output_key = "Succeeded", model_key, output_key
            row.finished_at, row.error = utcnow(), None
        elif stopped == "stopped":
            row.state, row.finished_at, row.error = "Stopped", utcnow(), "stopped"
        else:
            row.error = stopped or f"the script exited with status {code}"
            row.failures += 1  # script failures spend retries; dead workers do not
            row.state = "Failed" if row.failures > spec.retries else "Pending"
            if row.state == "Failed":
                row.finished_at = utcnow()
        state, error = row.state, row.error
        deps.events.append(
            f"training.job_{state.lower()}",
            scoped_resource(workspace, f"job/{name}"),
            {"run_id": run_id, "error": error},
            session=session,
        )
    if state == "Failed":
        raise JobFailed(f"training job {name} failed: {error}")
    if state == "Pending":
        raise JobAttemptFailed(f"training job {name}: {error}; retrying")
    return {"state": state, "model_key": model_key}
