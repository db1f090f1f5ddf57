"""The child process that runs one trial's objective function.

    python -m slipway.tuning.trial SPEC.json RESULT.json

The function gets the trial's parameters and a :class:`TrialContext`, whose ``report``
records an intermediate value with Optuna (the runner copies them to the trial's MLflow
run afterwards) and raises ``optuna.TrialPruned`` when the pruner says the trial is not
worth finishing. ``MLFLOW_RUN_ID`` names the trial's nested run, so anything the function
logs with ``mlflow`` lands there — and a trial that logs nothing never pays for opening
MLflow's store.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import optuna
import optuna.storages._rdb.models  # preloaded: see below
from sqlalchemy.orm import configure_mappers

from slipway.core.db.engine import Database
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.runtime.targets import resolve_target
from slipway.tuning.spec import TuningJobSpec
from slipway.tuning.study import open_study

# This module is preloaded by the workers' fork server, so Optuna's storage models are
# imported and their mappers configured once there, not in every trial (~80 ms a trial).
configure_mappers()


class TrialContext:
    def __init__(self, trial: optuna.Trial, run_id: str, metric: str) -> None:
        self._trial = trial
        self.run_id = run_id
        self.metric = metric
        self.number = trial.number

    def report(self, step: int, value: float) -> None:
        self._trial.report(value, step)
        if self._trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({self.metric}={value:.4g})")


def main(spec_path: str, result_path: str) -> int:
    payload = json.loads(Path(spec_path).read_text())
    for entry in reversed(payload["code_paths"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    spec = TuningJobSpec.model_validate(payload["spec"])
    result: dict[str, Any]
    try:
        os.environ["MLFLOW_RUN_ID"] = payload["run_id"]
        db = Database(payload["database_url"])
        workspace = payload.get("workspace", DEFAULT_WORKSPACE)
        study = open_study(db, spec, workspace=workspace, existing=True)
        trial = optuna.Trial(study, payload["trial_id"])
        fn = resolve_target(spec.trial)
        context = TrialContext(trial, payload["run_id"], spec.objective_metric)
        value = float(fn(payload["params"] | spec.static_parameters, context))
        result = {"ok": True, "value": value}
    except optuna.TrialPruned as exc:
        result = {"ok": False, "pruned": True, "error": str(exc)}
    except BaseException:
        error = traceback.format_exc()
        print(error, file=sys.stderr, flush=True)
        result = {"ok": False, "error": error}
    Path(result_path).write_text(json.dumps(result))
    return 0 if result.get("ok") or result.get("pruned") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
