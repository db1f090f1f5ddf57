"""A worker slot of a tuning job: ask Optuna for a trial, run it, tell the outcome, repeat.

A job with ``max_parallel_jobs = N`` enqueues N runner items; each runs one trial at a
time in a child process, so N trials run in parallel, all sharing one study. Asking is
serialized by a named lock so the budget (``max_jobs``) is never overshot, and the last
runner to finish records the best trial.

Crashes: a trial interrupted with its slot (a worker SIGKILLed, or stopping and handing
the slot back) stays RUNNING in the study. The slot's next holder marks it FAILED with
``interrupted`` set (not counted against ``max_jobs``), ends its MLflow run as KILLED and
enqueues the same parameters again, so the interrupted trial runs exactly once more and
the job's trial count is as if nothing had happened.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.events import EventLog
from slipway.core.locks import named_lock
from slipway.core.logsink import log_writer
from slipway.core.settings import Settings
from slipway.core.work import WorkContext
from slipway.core.workspace import (
    DEFAULT_WORKSPACE,
    scoped_name,
    scoped_resource,
    validate_workspace,
)
from slipway.registry.service import Registry
from slipway.runtime.bundles import import_paths
from slipway.runtime.childproc import run_forked
from slipway.tracking.config import user_tracking_env
from slipway.tuning.spec import TERMINAL, TuningJobSpec
from slipway.tuning.study import grid_size, open_study, suggest
from slipway.tuning.tables import TuningJobRow

WARM = "warm_start_from"
SLOT = "slot"
INTERRUPTED = "interrupted"
RETRY_OF = "retry_of"


@dataclass(frozen=True)
class TuningDeps:
    """What running tuning trials uses of the platform, given once when it is assembled
    (:func:`slipway.workers.handlers.handlers`)."""

    settings: Settings
    db: Database
    events: EventLog
    registry: Registry


def tuning_log_id(name: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    """The key of a tuning job's trial logs in the shared log table."""
    return f"tuning/{scoped_name(workspace, name)}"


def own_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """This job's trials (not those copied in by warm start, nor interrupted ones, which
    run again as a trial of their own)."""
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if WARM not in t.user_attrs and INTERRUPTED not in t.user_attrs
    ]


def recover_interrupted(
    deps: TuningDeps, spec: TuningJobSpec, study: optuna.Study, slot: int
) -> int:
    """Fail the trials a previous holder of ``slot`` left RUNNING and enqueue their
    parameters again; returns how many. Only the slot's lease holder calls this, so a
    RUNNING trial of the slot is never one that is still being run."""
    client = deps.registry.mlflow.client  # in the job's workspace: run_tuning_slot's scope
    recovered = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get(SLOT) != slot:
            continue
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
        # By tag, not the trial's run_id attribute: the holder may have died between
        # creating the run and recording its id.
        experiment = client.get_experiment_by_name(spec.experiment)
        runs = client.search_runs(
            [experiment.experiment_id] if experiment is not None else [],
            filter_string=f"tags.`slipway.tuning_job` = '{spec.name}'"
            f" and tags.`slipway.trial` = '{trial.number}' and attributes.status = 'RUNNING'",
        )
        for run in runs:
            client.set_terminated(run.info.run_id, "KILLED")
        recovered += 1
    return recovered


def budget(spec: TuningJobSpec) -> int:
    return min(spec.max_jobs, grid_size(spec)) if spec.strategy == "grid" else spec.max_jobs


def run_tuning_slot(context: WorkContext, deps: TuningDeps) -> dict[str, Any]:
    """The ``tuning.runner`` work handler. Its MLflow calls all run in the job's
    workspace (this thread's scope); items queued before workspaces were the default's."""
    workspace = validate_workspace(context.payload.get("workspace", DEFAULT_WORKSPACE))
    with deps.registry.mlflow.in_workspace(workspace).scope():
        return _run_slot(context, deps, workspace)


def _run_slot(context: WorkContext, deps: TuningDeps, workspace: str) -> dict[str, Any]:
    name = context.payload["name"]
    key = (workspace, name)
    with deps.db.session() as session:
        row = session.get(TuningJobRow, key)
        if row is None or row.state in TERMINAL:
            return {"ignored": True}
        spec = TuningJobSpec.model_validate(row.spec)
        parent_run = row.mlflow_run_id
    slot = int(context.payload.get("slot", 0))
    study = open_study(deps.db, spec, workspace=workspace, slot=slot)
    lock = tuning_log_id(name, workspace)
    with named_lock(deps.db, lock):
        recover_interrupted(deps, spec, study, slot)
    ran = 0
    while not context.lease_lost() and not _stopped(deps, key):
        with named_lock(deps.db, lock):
            if len(own_trials(study)) >= budget(spec):
                break
            trial = study.ask()
            trial.set_user_attr(SLOT, slot)
            params = suggest(trial, spec)
        run_id = _trial_run(deps, spec, parent_run, trial.number, params)
        trial.set_user_attr("run_id", run_id)
        outcome = _run_trial(context, deps, spec, workspace, trial, params, run_id)
        if context.lease_lost():
            # Interrupted: the trial stays RUNNING for the slot's next holder to run again.
            return {"trials": ran, "interrupted": trial.number}
        client = deps.registry.mlflow.client
        _log_values(client, run_id, spec, study, trial, outcome)
        if outcome.get("ok"):
            study.tell(trial, outcome["value"])
            client.set_terminated(run_id, "FINISHED")
        elif outcome.get("pruned"):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            client.set_tag(run_id, "slipway.trial_state", "pruned")
            client.set_terminated(run_id, "KILLED")
        else:
            trial.set_user_attr("error", outcome.get("error", "")[-2000:])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            client.set_terminated(run_id, "FAILED")
        ran += 1
    _finish_if_done(deps, spec, workspace, study)
    return {"trials": ran}


def _log_values(
    client: Any,
    run_id: str,
    spec: TuningJobSpec,
    study: optuna.Study,
    trial: optuna.Trial,
    outcome: dict[str, Any],
) -> None:
    """The trial's intermediate reports and its objective value as MLflow metrics."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    frozen = study._storage.get_trial(trial._trial_id)
    metrics = [
        Metric(spec.objective_metric, float(v), now, int(step))
        for step, v in sorted(frozen.intermediate_values.items())
    ]
    if outcome.get("ok"):
        metrics.append(Metric(spec.objective_metric, float(outcome["value"]), now, len(metrics)))
    if metrics:
        client.log_batch(run_id, metrics=metrics)


def _trial_run(
    deps: TuningDeps,
    spec: TuningJobSpec,
    parent: str | None,
    number: int,
    params: dict[str, Any],
) -> str:
    client = deps.registry.mlflow.client
    experiment = client.get_experiment_by_name(spec.experiment)
    assert experiment is not None
    tags = {"slipway.tuning_job": spec.name, "slipway.trial": str(number)}
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment.experiment_id, run_name=f"{spec.name}-{number}", tags=tags)
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    return str(run.info.run_id)


def _run_trial(
    context: WorkContext,
    deps: TuningDeps,
    spec: TuningJobSpec,
    workspace: str,
    trial: optuna.Trial,
    params: dict[str, Any],
    run_id: str,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="slipway-trial-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(
            json.dumps(
                {
                    "spec": spec.model_dump(mode="json"),
                    "params": params,
                    "trial_id": trial._trial_id,
                    "run_id": run_id,
                    "workspace": workspace,
                    "database_url": deps.settings.database_url,
                    "code_paths": import_paths(deps.settings, spec.code_paths),
                }
            )
        )
        env = deps.settings.as_env() | user_tracking_env(deps.settings, workspace)

        log = log_writer(deps.db, tuning_log_id(spec.name, workspace), f"trial-{trial.number}", 1)

        outcome = run_forked(
            "slipway.tuning.trial",
            "main",
            (str(spec_path), str(result_path)),
            env=env,
            log=log,
            timeout=spec.trial_timeout_seconds,
            memory_mb=spec.memory_mb,
            cpus=spec.cpus,
            should_stop=lambda: context.lease_lost() or _stopped(deps, (workspace, spec.name)),
        )
        if outcome.stopped or not result_path.exists():
            return {"ok": False, "error": outcome.stopped or f"trial died ({outcome.returncode})"}
        result: dict[str, Any] = json.loads(result_path.read_text())
        return result


def _stopped(deps: TuningDeps, key: tuple[str, str]) -> bool:
    with deps.db.session() as session:
        row = session.get(TuningJobRow, key)
        return row is None or row.state == "Stopped"


def _finish_if_done(
    deps: TuningDeps, spec: TuningJobSpec, workspace: str, study: optuna.Study
) -> None:
    key = (workspace, spec.name)
    with named_lock(deps.db, tuning_log_id(spec.name, workspace)):
        trials = own_trials(study)
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        if running or len(trials) < budget(spec):
            return
        completed = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE
        ]
        with deps.db.session() as session:
            current = session.get(TuningJobRow, key)
            if current is None or current.state in TERMINAL:
                return
            parent_run = current.mlflow_run_id
        if parent_run:
            # The parent run ends before the job does, so whoever sees one sees both.
            deps.registry.mlflow.client.set_terminated(
                parent_run, "FINISHED" if completed else "FAILED"
            )
        with deps.db.write() as session:
            row = session.get(TuningJobRow, key)
            assert row is not None
            if row.state in TERMINAL:
                return
            if completed:
                best = study.best_trial
                row.best = {
                    "number": best.number,
                    "value": best.value,
                    "params": best.params,
                    "run_id": best.user_attrs.get("run_id"),
                    "warm_start_from": best.user_attrs.get(WARM),
                }
                row.state = "Completed"
            else:
                row.state, row.error = "Failed", "no trial completed"
            row.finished_at = utcnow()
            deps.events.append(
                f"tuning.job_{row.state.lower()}",
                scoped_resource(workspace, f"tuning/{spec.name}"),
                {"best": row.best},
                session=session,
            )
