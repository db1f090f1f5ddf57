"""The registry's resources: what :class:`~slipway.registry.service.Registry` returns, what
the REST API sends and accepts, what the remote client decodes and what the CLI prints —
each modelled once here.

A :class:`ModelVersion` is one registered version with Slipway's record beside MLflow's
(approval, digest, lineage, what it returns); :class:`RegisteredModel` one line of the
model listing; :class:`Transition` one change of approval; :class:`Comparison` versions
side by side; :class:`ModelInput` one edge of the reverse lineage (a feature group a
version was trained on). The request bodies forbid unknown fields, so a misspelt one is
an :class:`~slipway.core.errors.InvalidInput` naming it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from slipway.core.resource import Resource, html_table
from slipway.registry.lineage import Lineage
from slipway.registry.models import ApprovalStatus, Output


class ModelVersion(Resource):
    """A registered model version: MLflow's version with Slipway's approval status, the
    digest of its files, its lineage, its run's metrics and params, and its card fields."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "version",
        "approval_status",
        "aliases",
        "output",
        "registered_by",
        "registered_at",
    )

    name: str
    version: int
    run_id: str | None
    source: str = Field(description="where it was registered from (runs:/…, mlflow-artifacts:/…)")
    # Where the files are in this platform's artifact store: used in process to load and
    # verify them, never sent (the API has not exposed the store's layout; a remote
    # client reads an empty string).
    artifact_key: str = Field(default="", exclude=True)
    approval_status: ApprovalStatus
    digest: str = Field(description="SHA-256 over the model's files, checked before loading")
    signature: dict[str, Any]
    lineage: dict[str, Any] = Field(description="what it was made from (see Lineage)")
    description: str
    registered_by: str
    registered_at: datetime
    aliases: list[str] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    output: Output = Output.LABEL
    classes: list[Any] | None = Field(
        default=None,
        description="the class labels in the order of the probabilities (null for label)",
    )
    owner: str = Field(default="", description="who answers for it (model card)")
    intended_use: str = Field(default="", description="what it is for, and not for")


class ImportedVersion(Resource):
    """The answer to importing (promoting) a version from another Slipway: the version
    here, and whether this import made it — false when that source version (platform,
    workspace, name, version and digest) was promoted here before, which it then is."""

    created: bool
    version: ModelVersion


class RegisteredModel(Resource):
    """A registered model: how many versions it has, the latest, and the approved ones."""

    name: str
    versions: int = Field(description="how many versions are registered")
    latest: int
    approved: list[int] = Field(default_factory=list)
    latest_status: ApprovalStatus | None = Field(
        default=None, description="the latest version's approval status"
    )
    updated_at: datetime | None = Field(
        default=None, description="when a version was last registered or changed"
    )


class Transition(Resource):
    """One change of a version's approval status: who, when and why."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "time",
        "from_status",
        "to_status",
        "actor",
        "comment",
    )

    name: str
    version: int
    from_status: ApprovalStatus | None = Field(description="null for the registration")
    to_status: ApprovalStatus
    actor: str
    comment: str
    time: datetime


class Comparison(Resource):
    """Two or more versions side by side: each list has one entry per version, in the
    order asked; a metric or param a version lacks is null."""

    versions: list[int]
    approval_status: list[ApprovalStatus]
    metrics: dict[str, list[float | None]]
    params: dict[str, list[str | None]]

    def rows(self) -> list[list[Any]]:
        """One row per compared figure: its name, then its value for each version."""
        out: list[list[Any]] = [["status", *self.approval_status]]
        out += [[f"metric {k}", *values] for k, values in self.metrics.items()]
        out += [[f"param {k}", *values] for k, values in self.params.items()]
        return out

    def _repr_html_(self) -> str:
        columns = ["", *(f"v{v}" for v in self.versions)]
        return html_table(self.rows(), columns, title="Comparison")


class ModelInput(Resource):
    """Reverse lineage: a model version trained on a feature group, at a Delta version
    (null when the training set did not pin one)."""

    model: str
    version: int
    feature_group: str
    delta_version: int | None


# -- request bodies ------------------------------------------------------------------


class RegisterRequest(BaseModel):
    """The body that registers a new version of a model."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        description="runs:/<run id>/<path>, mlflow-artifacts:/… or a path in the artifact store"
    )
    description: str = ""
    lineage: Lineage = Field(default_factory=Lineage)
    output: Output = Field(
        default=Output.LABEL,
        description="what the version returns: label (the model's predict), probabilities"
        " (one per class) or both; probabilities need a classifier that can produce them",
    )
    owner: str = Field(default="", max_length=255, description="who answers for it (card)")
    intended_use: str = Field(
        default="", max_length=5000, description="what it is for, and not for (model card)"
    )


class ApprovalRequest(BaseModel):
    """The body that approves or rejects a version."""

    model_config = ConfigDict(extra="forbid")

    status: ApprovalStatus
    comment: str = Field(default="", max_length=4000)


class AliasRequest(BaseModel):
    """The body that points an alias at a version."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**63 - 1)


__all__ = [
    "AliasRequest",
    "ApprovalRequest",
    "Comparison",
    "ImportedVersion",
    "ModelInput",
    "ModelVersion",
    "RegisterRequest",
    "RegisteredModel",
    "Transition",
]
