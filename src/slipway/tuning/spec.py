"""A tuning job: ranges, objective, strategy, budget and the trial function."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from slipway.core.names import validate_name
from slipway.core.specs import parse_spec

QUEUE = "trials"
RUNNER_KIND = "tuning.runner"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


class ParameterRange(BaseModel):
    """SageMaker's ranges: Continuous (linear or log), Integer, Categorical."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["continuous", "integer", "categorical"]
    min: float | None = None
    max: float | None = None
    scale: Literal["linear", "log"] = "linear"
    values: list[str | int | float | bool] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ParameterRange:
        if self.type == "categorical":
            if not self.values:
                raise ValueError("a categorical range needs values")
            return self
        if self.min is None or self.max is None or self.min >= self.max:
            raise ValueError("a numeric range needs min < max")
        if self.scale == "log" and self.min <= 0:
            raise ValueError("a log-scaled range needs min > 0")
        return self


class TuningJobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    trial: str = Field(description="module:function(params, trial) -> objective value")
    objective_metric: str = "objective"
    direction: Literal["maximize", "minimize"] = "maximize"
    parameter_ranges: dict[str, ParameterRange] = Field(min_length=1)
    static_parameters: dict[str, Any] = Field(default_factory=dict)
    strategy: Literal["bayesian", "random", "grid"] = "bayesian"
    max_jobs: int = Field(default=10, ge=1, le=10_000)
    max_parallel_jobs: int = Field(default=1, ge=1, le=64)
    early_stopping: StrictBool = False
    warm_start_from: list[str] = Field(default_factory=list)
    seed: int | None = None
    experiment: str = "tuning-jobs"
    trial_timeout_seconds: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=64)
    cpus: float | None = Field(default=None, gt=0, le=1024)
    code_paths: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, field="name")

    @field_validator("warm_start_from")
    @classmethod
    def _parents(cls, value: list[str]) -> list[str]:
        return [validate_name(v, field="warm_start_from") for v in value]

    @model_validator(mode="after")
    def _grid(self) -> TuningJobSpec:
        if ":" not in self.trial:
            raise ValueError("trial must be module:function")
        if self.strategy == "grid":
            for name, spec in self.parameter_ranges.items():
                if spec.type == "continuous":
                    raise ValueError(f"grid search cannot enumerate continuous range {name!r}")
        return self

    @classmethod
    def parse(cls, data: Any) -> TuningJobSpec:
        """Validate ``data`` (a dict or YAML-loaded mapping); errors name the field."""
        return parse_spec(cls, data)
