"""The serving capability's resources: an endpoint, its deployments (the stored configs,
its history), a prediction the gateway answered and the traffic figures its variants
served.

:class:`~slipway.serving.service.Endpoints` returns these, the REST API sends them (and
takes :class:`~slipway.serving.spec.EndpointSpec` / :class:`EndpointUpdate` as bodies),
the remote client decodes them and the CLI prints them. The database keeps its own
format (``slipway_endpoint_configs.spec`` is the spec's JSON, which the gateway reads);
these are built from the rows at the service's edge.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slipway.core.names import validate_name
from slipway.core.resource import Resource
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.serving.spec import EndpointSpec
from slipway.serving.states import EndpointStatus, Outcome


class Deployment(Resource):
    """One stored config of an endpoint and how its rollout ended: an entry of the
    endpoint's deployment history. Configs are immutable; a rollback stores an old one
    again as a new version with ``rollback_of`` pointing back."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "endpoint",
        "version",
        "outcome",
        "outcome_reason",
        "rollback_of",
        "created_by",
        "created_at",
    )

    endpoint: str
    version: int
    outcome: Outcome = Field(description="pending, deployed, retired, rolled_back or failed")
    outcome_reason: str
    rollback_of: int | None = Field(description="the config this one deployed again")
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    spec: EndpointSpec = Field(description="model references pinned to versions")


class GatewayLoad(Resource):
    """Whether one live gateway worker has a config's models loaded."""

    gateway: str
    config_version: int
    state: str = Field(description="loading, ready or failed")
    error: str


class Endpoint(Resource):
    """A serving endpoint: its status, the config serving (``active``), the one rolling
    out (``target``, with ``target_percent`` of the traffic) and what the gateways have
    loaded. ``url`` is where its invocations go (the gateway, not the control plane)."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "status",
        "active_version",
        "target_version",
        "target_percent",
        "updated_at",
    )

    name: str
    workspace: str = DEFAULT_WORKSPACE
    status: EndpointStatus
    status_reason: str
    active_version: int | None
    target_version: int | None
    target_percent: float
    phase: int
    generation: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    traffic: dict[str, float] = Field(description="share of traffic (0..1) per variant now")
    active: Deployment | None
    target: Deployment | None
    latest: Deployment | None = Field(
        description="the newest config: after a failed or rolled-back update the endpoint is"
        " InService again, and only this says the update did not take"
    )
    gateways: list[GatewayLoad]
    url: str = Field(description="SageMaker-style invocations: POST JSON or CSV here")


class Prediction(Resource):
    """What the gateway answered an invocation: the predictions (one per row) and which
    variant, model version and config served it."""

    table_fields: ClassVar[tuple[str, ...]] = ("endpoint", "variant", "model", "config_version")

    endpoint: str
    predictions: list[Any]
    classes: list[Any] | None = Field(
        default=None, description="a classifier's classes, in the order of its probabilities"
    )
    variant: str
    model: str = Field(description="name:version of the model that answered")
    config_version: int
    inference_id: str = Field(description="the id captured with it, for ground truth")


class VariantStats(Resource):
    """What one variant served, summed over every gateway worker. Latency percentiles are
    within 1% of the exact ones; figures without requests are null."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "requests",
        "errors",
        "error_rate",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "mean_ms",
        "prediction_mean",
    )

    requests: int
    errors: int
    error_rate: float | None = Field(description="errors / requests, 0..1")
    p50_ms: float | None = Field(description="median request latency at the gateway")
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    model_p50_ms: float | None = Field(description="median time in the model")
    model_p90_ms: float | None
    model_p99_ms: float | None
    model_mean_ms: float | None
    prediction_mean: float | None = Field(description="mean of numeric predictions")


class EndpointStats(Resource):
    """What each variant of an endpoint served (see
    :meth:`~slipway.serving.service.Endpoints.stats`): counted in 5-second windows, the one
    holding ``since`` included whole; no variants when there was no traffic."""

    table_fields: ClassVar[tuple[str, ...]] = ("endpoint", "since", "config_version")

    endpoint: str
    since: datetime | None
    config_version: int | None
    variants: dict[str, VariantStats] = Field(description="per variant (shadow ones too)")


class EndpointUpdate(EndpointSpec):
    """The body of an update: an endpoint spec whose ``name`` may be left out (the path
    names the endpoint) but must not contradict it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None  # type: ignore[assignment]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:  # type: ignore[override]
        return None if value is None else validate_name(value, field="name")

    def for_endpoint(self, name: str) -> EndpointSpec:
        """The spec of endpoint ``name`` (the service refuses a spec naming another)."""
        fields = {k: getattr(self, k) for k in self.model_fields_set if k != "name"}
        return EndpointSpec.model_validate({**fields, "name": self.name or name})


class RollbackRequest(BaseModel):
    """The body of a rollback: which config to deploy again."""

    model_config = ConfigDict(extra="forbid")

    to_version: int | None = Field(
        default=None, ge=1, description="config to deploy again; default: the one before"
    )


__all__ = [
    "Deployment",
    "Endpoint",
    "EndpointStats",
    "EndpointUpdate",
    "GatewayLoad",
    "Prediction",
    "RollbackRequest",
    "VariantStats",
]
