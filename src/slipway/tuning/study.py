"""Optuna studies in the metadata database, and the samplers and pruners of a job.

Optuna keeps its own tables and its own ``alembic_version`` table, which would collide
with MLflow's in the same schema; on PostgreSQL its tables therefore live in a schema of
their own (``slipway_optuna``) of the metadata database, and on SQLite in ``optuna.db``
beside the metadata file.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import text
from sqlalchemy.engine import make_url

from slipway.core.db.engine import Database, normalize_url
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_name
from slipway.tuning.spec import TuningJobSpec

SCHEMA = "slipway_optuna"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def storage(db: Database, *, existing: bool = False) -> optuna.storages.RDBStorage:
    """Optuna's storage on the metadata database. ``existing`` skips table creation and
    the version check — for trial processes, which open a study the service created."""
    if db.is_sqlite:
        folder = Path(db.url.database or ".").expanduser().resolve().parent
        return optuna.storages.RDBStorage(
            f"sqlite:///{folder / 'optuna.db'}",
            engine_kwargs={"connect_args": {"timeout": 60}},
            skip_compatibility_check=existing,
            skip_table_creation=existing,
        )
    if not existing:
        with db.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    url = normalize_url(make_url(db.url).render_as_string(hide_password=False))
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs={
            "connect_args": {"options": f"-csearch_path={SCHEMA}"},
            "pool_pre_ping": True,
        },
        skip_compatibility_check=existing,
        skip_table_creation=existing,
    )


def sampler(spec: TuningJobSpec, slot: int = 0) -> optuna.samplers.BaseSampler:
    """The job's sampler as parallel slot ``slot`` uses it: each slot seeds its own from
    the job's seed and its number, or parallel slots would draw the same trials."""
    seed = None if spec.seed is None else spec.seed + slot
    if spec.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.strategy == "grid":
        return optuna.samplers.GridSampler(grid(spec), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, spec.max_jobs))


def grid(spec: TuningJobSpec) -> dict[str, list[Any]]:
    space: dict[str, list[Any]] = {}
    for name, r in spec.parameter_ranges.items():
        if r.type == "categorical":
            space[name] = list(r.values or [])
        else:
            assert r.min is not None and r.max is not None
            space[name] = list(range(int(r.min), int(r.max) + 1))
    return space


def grid_size(spec: TuningJobSpec) -> int:
    return len(list(itertools.product(*grid(spec).values())))


def pruner(spec: TuningJobSpec) -> optuna.pruners.BasePruner:
    if not spec.early_stopping:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def suggest(trial: optuna.Trial, spec: TuningJobSpec) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, r in spec.parameter_ranges.items():
        if r.type == "categorical":
            params[name] = trial.suggest_categorical(name, list(r.values or []))
        elif r.type == "integer":
            assert r.min is not None and r.max is not None
            params[name] = trial.suggest_int(name, int(r.min), int(r.max), log=r.scale == "log")
        else:
            assert r.min is not None and r.max is not None
            params[name] = trial.suggest_float(name, r.min, r.max, log=r.scale == "log")
    return params


def study_name(name: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    """The Optuna study of tuning job ``name`` of ``workspace``: Optuna's names are one
    namespace, so another workspace's are ``<workspace>/<name>``."""
    return scoped_name(workspace, name)


def open_study(
    db: Database,
    spec: TuningJobSpec,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    existing: bool = False,
    slot: int = 0,
) -> optuna.Study:
    return optuna.load_study(
        study_name=study_name(spec.name, workspace),
        storage=storage(db, existing=existing),
        sampler=sampler(spec, slot),
        pruner=pruner(spec),
    )
