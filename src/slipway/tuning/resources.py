"""The tuning capability's resources: a :class:`TuningJob` and its :class:`Trial` s. The
request body is :class:`~slipway.tuning.spec.TuningJobSpec`, carried back as ``spec``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from slipway.core.resource import Resource
from slipway.tuning.spec import TuningJobSpec


class BestTrial(BaseModel):
    """The best finished trial of a job, recorded when its last trial ends."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    number: int
    value: float | None = None
    params: dict[str, Any]
    run_id: str | None = None
    warm_start_from: str | None = None


class TuningJob(Resource):
    """A hyperparameter tuning job: its spec, state (Running, Completed, Failed or
    Stopped), parent MLflow run and, once finished, its best trial."""

    table_fields: ClassVar[tuple[str, ...]] = ("name", "state", "best", "created_at", "finished_at")

    name: str
    state: str
    spec: TuningJobSpec
    mlflow_run_id: str | None = None
    best: BestTrial | None = None
    created_at: datetime
    finished_at: datetime | None = None
    error: str | None = None


class Trial(Resource):
    """One trial of a tuning job (an Optuna trial): its parameters, objective value,
    MLflow run and intermediate values. A trial copied from a parent job names it in
    ``warm_start_from``; one interrupted with its worker is ``interrupted`` and runs again
    as the trial numbered ``retry_of`` points back to."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "number",
        "state",
        "value",
        "params",
        "warm_start_from",
    )

    number: int
    state: str
    value: float | None = None
    params: dict[str, Any]
    run_id: str | None = None
    warm_start_from: str | None = None
    intermediate: dict[int, float]
    error: str | None = None
    interrupted: bool = False
    retry_of: int | None = None


__all__ = ["BestTrial", "Trial", "TuningJob"]
