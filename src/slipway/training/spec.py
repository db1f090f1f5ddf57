"""What a training job runs, with what data and hyperparameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from slipway.core.names import validate_name
from slipway.core.specs import parse_spec
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_name, scoped_resource

QUEUE = "jobs"
JOB_KIND = "training.job"
# Attempts beyond the job's own retries, spent only when a worker dies under the job.
CRASH_RETRIES = 2
TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})


def job_log_id(name: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    """The key of a job's log lines in the shared log table."""
    return f"job/{scoped_name(workspace, name)}"


def job_key(name: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    """Where a job keeps its files (checkpoints, model, output) in the artifact store:
    ``jobs/<name>``, under ``workspaces/<ws>/`` in another workspace than the default."""
    return scoped_resource(workspace, f"jobs/{name}")


class TrainingJobSpec(BaseModel):
    """A training job, SageMaker-style: an entry point, channels and hyperparameters.

    Exactly one of ``script`` (a file in ``source_dir``), ``module`` (run with
    ``python -m``) or ``function`` (``module:callable``, called with the hyperparameters as
    keyword arguments) says what to run.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    script: str | None = None
    module: str | None = None
    function: str | None = None
    source_dir: str | None = None
    hyperparameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    channels: dict[str, str] = Field(default_factory=dict, description="name -> local folder")
    retries: int = Field(default=0, ge=0, le=20)
    max_run_seconds: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=64)
    cpus: float | None = Field(default=None, gt=0, le=1024)
    experiment: str = "training-jobs"
    checkpoint_sync_seconds: float = Field(default=2.0, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, field="name")

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: dict[str, str]) -> dict[str, str]:
        for channel in value:
            validate_name(channel, field="channels")
        return value

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"hyperparameter name {key!r} must be letters, digits, - or _")
        return value

    @model_validator(mode="after")
    def _one_entry_point(self) -> TrainingJobSpec:
        given = [x for x in (self.script, self.module, self.function) if x]
        if len(given) != 1:
            raise ValueError("give exactly one of script, module or function")
        if self.script and not self.source_dir:
            raise ValueError("a script needs source_dir")
        if self.script and (Path(self.script).is_absolute() or ".." in Path(self.script).parts):
            raise ValueError("script must be a relative path inside source_dir")
        return self

    @classmethod
    def parse(cls, data: Any) -> TrainingJobSpec:
        """Validate ``data`` (a dict or YAML-loaded mapping); errors name the field."""
        return parse_spec(cls, data)
