"""What an endpoint serves and how changes to it roll out.

An endpoint config is immutable once stored: every create, update and rollback writes a new
numbered config, and the deployment history is the list of them with their outcomes. Model
references are resolved to a version when a config is stored, so moving an alias later does
not silently change what an endpoint serves (SageMaker's endpoint-config semantics).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.features.refs import FeatureRef
from slipway.registry.models import parse_model_ref


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantSpec(_Spec):
    """A production variant: a registered model version and its share of the traffic."""

    name: str
    model: str = Field(description="registry reference: name:version or name@alias")
    weight: float = Field(default=1.0, ge=0)
    workers: int = Field(
        default=1, ge=1, le=64, description="threads predicting for it in each gateway process"
    )
    version: int | None = Field(default=None, description="set by Slipway: the resolved version")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, field="name")

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if parse_model_ref(value)[1] is None:
            raise ValueError("name a version (name:3) or an alias (name@champion)")
        return value

    @property
    def model_name(self) -> str:
        return parse_model_ref(self.model)[0]


class ShadowSpec(VariantSpec):
    """A shadow variant gets a mirrored sample of requests; its answers are only captured."""

    weight: float = Field(default=0.0, ge=0, le=0)
    sampling_percent: float = Field(default=100.0, gt=0, le=100)


class CaptureSpec(_Spec):
    enabled: StrictBool = False
    sampling_percent: float = Field(default=100.0, ge=0, le=100)


class OnMissing(StrEnum):
    ERROR = "error"  # 400 naming the entity
    NULL = "null"  # features become null (NaN) and the model decides


def parse_view_ref(text: str, *, field: str = "enrichment.feature_view") -> tuple[str, int | None]:
    """``name`` or ``name:version`` → (name, version or None); InvalidInput naming
    ``field`` otherwise."""
    name, colon, version = text.partition(":")
    validate_name(name, field=field)
    if not colon:
        return name, None
    if not version.isdigit() or not 1 <= int(version) <= 2**31 - 1:
        raise InvalidInput(
            f"{text!r}: a feature view is named like rider or rider:3 (a version from 1)",
            field=field,
        )
    return name, int(version)


class EnrichmentSpec(_Spec):
    """Online features joined to each request row before predicting: stored features
    named one by one (``features``), or every column of a feature view
    (``feature_view``) — its stored features, windows and row-level transformations,
    computed as the training set computed them. Exactly one of the two."""

    features: list[str] = Field(
        default_factory=list, description="group:feature references (or give feature_view)"
    )
    feature_view: str | None = Field(
        default=None,
        validate_default=True,
        description="name or name:version; stored pinned to a version (see the endpoint service)",
    )
    entity_keys: dict[str, str] = Field(
        default_factory=dict,
        description="request field -> record-identifier column, when the names differ",
    )
    on_missing: OnMissing = OnMissing.ERROR

    @field_validator("features")
    @classmethod
    def _refs(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ref = FeatureRef.parse(text, field="features")
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
            if ref.every_feature:
                # The gateway joins named columns to the request: a wildcard would become a
                # column called "*". Name the features the model needs.
                raise ValueError(f"{text!r}: name each feature (group:* is not supported here)")
        return value

    @field_validator("feature_view")
    @classmethod
    def _one_source(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator (not a model one) so the error names enrichment.feature_view;
        # ``features`` is validated first, and absent from info.data when it was invalid.
        if "features" not in info.data:
            return value
        features = info.data["features"]
        if value is None and not features:
            raise ValueError("give features (group:feature references) or a feature_view")
        if value is not None and features:
            raise ValueError("give features or feature_view, not both")
        if value is not None:
            try:
                parse_view_ref(value)
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        return value

    @property
    def view(self) -> tuple[str, int | None] | None:
        """The feature view (name, version) it names, if it names one."""
        return None if self.feature_view is None else parse_view_ref(self.feature_view)


class ServerlessSpec(_Spec):
    idle_timeout_seconds: float = Field(default=300.0, gt=0)


class MultiModelSpec(_Spec):
    """Models picked per request by the target-model header, loaded on demand."""

    memory_budget_mb: float = Field(default=1024.0, gt=0)
    models: list[str] = Field(min_length=1, description="registered model names it may load")

    @field_validator("models")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [validate_name(name, field="multi_model.models") for name in value]


class AlarmMetric(StrEnum):
    ERROR_RATE = "error_rate"  # errors / requests, 0..1
    LATENCY_P50_MS = "latency_p50_ms"
    LATENCY_P90_MS = "latency_p90_ms"
    LATENCY_P99_MS = "latency_p99_ms"
    PREDICTION_MEAN = "prediction_mean"  # mean of numeric predictions


class AlarmSpec(_Spec):
    """Trips when ``metric`` of the new config's traffic crosses ``threshold``."""

    name: str = "alarm"
    metric: AlarmMetric
    threshold: float
    comparison: Literal["gt", "lt"] = "gt"
    min_requests: int = Field(default=10, ge=1, description="evaluate only with this many")

    def tripped(self, value: float | None) -> bool:
        if value is None:
            return False
        return value > self.threshold if self.comparison == "gt" else value < self.threshold


class Strategy(StrEnum):
    ALL_AT_ONCE = "all_at_once"
    CANARY = "canary"
    LINEAR = "linear"


class DeploymentSpec(_Spec):
    """How an update shifts traffic: the percentages of each phase and how long each bakes.

    ``canary`` sends ``canary_percent`` (or each of ``steps``) and then everything;
    ``linear`` adds ``step_percent`` every ``interval_seconds``. Every phase bakes with the
    alarms watching; a tripped alarm rolls back to the previous config.
    """

    strategy: Strategy = Strategy.ALL_AT_ONCE
    canary_percent: float = Field(default=10.0, gt=0, lt=100)
    steps: list[float] | None = Field(default=None, description="explicit phases, e.g. 5,25,50")
    step_percent: float = Field(default=25.0, gt=0, le=100)
    interval_seconds: float = Field(default=60.0, ge=0)
    baking_seconds: float = Field(default=0.0, ge=0)
    alarms: list[AlarmSpec] = Field(default_factory=list)
    load_timeout_seconds: float = Field(default=300.0, gt=0)

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if not value or any(not 0 < s <= 100 for s in value) or value != sorted(set(value)):
            raise ValueError("steps must increase, each in (0, 100]")
        return value

    def phases(self) -> list[tuple[float, float]]:
        """(percent of traffic on the new config, seconds to bake) for each phase."""
        if self.strategy is Strategy.ALL_AT_ONCE:
            return [(100.0, self.baking_seconds)]
        if self.strategy is Strategy.CANARY:
            steps = self.steps or [self.canary_percent]
            return [(p, self.baking_seconds) for p in steps if p < 100] + [
                (100.0, self.baking_seconds)
            ]
        percents: list[float] = []
        current = 0.0
        while current < 100:
            current = min(100.0, current + self.step_percent)
            percents.append(current)
        return [(p, self.interval_seconds) for p in percents[:-1]] + [(100.0, self.baking_seconds)]


class EndpointSpec(_Spec):
    """An endpoint: what it serves (variants) and how (capture, enrichment, modes)."""

    name: str
    description: str = ""
    environment: str = Field(default="staging", description="approval policy to apply")
    variants: list[VariantSpec] = Field(min_length=1)
    shadow_variants: list[ShadowSpec] = Field(default_factory=list)
    data_capture: CaptureSpec = Field(default_factory=CaptureSpec)
    enrichment: EnrichmentSpec | None = None
    serverless: ServerlessSpec | None = None
    multi_model: MultiModelSpec | None = None
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
    max_batch_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="requests of this endpoint served at once per gateway worker; past it, 429",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, field="name")

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        return validate_name(value, field="environment")

    @model_validator(mode="after")
    def _consistent(self) -> EndpointSpec:
        names = [v.name for v in [*self.variants, *self.shadow_variants]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicates)}")
        if sum(v.weight for v in self.variants) <= 0:
            raise ValueError("the variants' weights must not all be zero")
        if self.multi_model is not None and (len(self.variants) > 1 or self.shadow_variants):
            raise ValueError("a multi-model endpoint has one variant and no shadows")
        return self

    def variant(self, name: str) -> VariantSpec | None:
        return next((v for v in self.variants if v.name == name), None)

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
