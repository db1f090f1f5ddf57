"""What a monitor watches, how often, and what counts as a violation."""

from __future__ import annotations

from typing import Any, Literal

from croniter import croniter
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
from slipway.features.definitions import validate_column
from slipway.monitoring import bias
from slipway.monitoring.model_quality import METRICS

QUEUE = "monitoring"
RUN_KIND = "monitor.run"
KINDS = ("data_quality", "model_quality", "bias", "attribution_drift", "feature_skew")
STATUSES = ("no_violations", "violations", "no_data", "failed")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriftOverride(_Spec):
    """A column's drift rule, replacing the baseline constraints' for this monitor."""

    method: Literal["psi", "ks_statistic", "ks_p_value", "chi2_p_value"] = "psi"
    threshold: float = Field(0.2, ge=0)


class Bound(_Spec):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class ModelQuality(_Spec):
    """How predictions and labels are compared (SageMaker's ModelQualityMonitor)."""

    problem_type: Literal["regression", "binary_classification", "multiclass_classification"]
    positive_label: bool | int | float | str = 1
    probability_threshold: float | None = Field(None, ge=0, le=1)
    thresholds: dict[str, Bound] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _metrics(self) -> ModelQuality:
        known = METRICS[self.problem_type]
        for metric in self.thresholds:
            if metric not in known:
                raise ValueError(
                    f"{metric!r} is not a {self.problem_type} metric ({', '.join(known)})"
                )
        return self


class Bias(_Spec):
    """How a bias monitor splits traffic and scores it (SageMaker Clarify's metrics, see
    :mod:`slipway.monitoring.bias`): ``facet`` is a model input column; group d is the
    rows with one of ``facet_values``, or with a value ``>= facet_threshold``."""

    facet: str = Field(min_length=1, max_length=255)
    facet_threshold: float | None = Field(
        None, allow_inf_nan=False, description="numeric facets: group d is facet >= this"
    )
    facet_values: list[bool | int | float | str] | None = Field(
        None,
        min_length=1,
        max_length=bias.MAX_FACET_VALUES,
        validate_default=True,
        description="categorical facets: the values forming group d",
    )
    positive_label: bool | int | float | str = 1
    probability_threshold: float | None = Field(
        None, ge=0, le=1, description="captured scores >= this are predicted positive"
    )
    thresholds: dict[str, Bound] = Field(
        default_factory=dict, description='per metric, e.g. {"DI": {"min": 0.8}}'
    )

    @field_validator("facet_values")
    @classmethod
    def _one_facet_rule(
        cls, value: list[bool | int | float | str] | None, info: ValidationInfo
    ) -> list[bool | int | float | str] | None:
        # facet_threshold is declared first, so it is validated (and in info.data) by now.
        if (value is None) == (info.data.get("facet_threshold") is None):
            raise ValueError("give facet_values or facet_threshold, exactly one of them")
        return value

    @field_validator("thresholds")
    @classmethod
    def _metrics(cls, value: dict[str, Bound]) -> dict[str, Bound]:
        for metric in value:
            if metric not in bias.METRICS:
                raise ValueError(f"{metric!r} is not a bias metric ({', '.join(bias.METRICS)})")
        return value

    def facet_rule(self) -> bias.Facet:
        values = tuple(self.facet_values) if self.facet_values is not None else None
        return bias.Facet(self.facet, values=values, threshold=self.facet_threshold)


class Attribution(_Spec):
    """How an attribution-drift monitor ranks features (SageMaker Clarify's explainability
    monitor, see :mod:`slipway.monitoring.attribution`): the global importance (mean
    |SHAP|) of the captured traffic, per model version served, against ``reference`` — a
    feature → importance mapping, or (when not given) the importance registered with the
    version (``register_model(reports={"importance": explain_global(...)})``). A run whose
    NDCG of the two rankings is below ``threshold`` is a violation."""

    reference: dict[str, float] | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="feature -> global importance; default: the version's registered one",
    )
    threshold: float = Field(0.9, gt=0, le=1, description="NDCG below this is a violation")
    top_k: int | None = Field(
        None, ge=1, le=10_000, description="rank only the k most important features"
    )
    max_rows: int = Field(
        100_000, ge=1, le=10_000_000, description="rows explained per version (a seeded sample)"
    )
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @field_validator("reference")
    @classmethod
    def _importances(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        for feature, importance in value.items():
            if not feature or len(feature) > 255:
                raise ValueError("feature names are 1 to 255 characters")
            if not (importance >= 0 and importance < float("inf")):
                raise ValueError(f"{feature!r}: an importance is a finite number >= 0")
        if not any(value.values()):
            raise ValueError("at least one feature needs an importance above 0")
        return value


def parse_view_ref(text: str, *, field: str) -> tuple[str, int | None]:
    """``"name"`` or ``"name:version"`` → (name, version or None); InvalidInput naming
    ``field`` otherwise."""
    name, sep, version = text.partition(":")
    validate_name(name, field=field)
    if not sep:
        return name, None
    if not version.isdigit() or not 1 <= int(version) <= 2**31:
        raise InvalidInput(
            f"{text!r}: a feature view is named 'name' or 'name:version' (a positive number)",
            field=field,
        )
    return name, int(version)


class Skew(_Spec):
    """How a feature-skew monitor compares what was served with the feature view
    recomputed offline (see :mod:`slipway.monitoring.skew`): a number differs when
    ``|served - offline| > abs_tolerance + rel_tolerance * |offline|`` (nulls, text and
    booleans when not equal); a feature whose share of differing rows is above
    ``max_mismatch_share`` is a violation."""

    feature_view: str | None = Field(
        None,
        max_length=300,
        description="'name' or 'name:version'; default: the view the endpoint's enrichment pins",
    )
    features: list[str] | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="the view columns compared; default: every one the capture holds",
    )
    abs_tolerance: float = Field(1e-9, ge=0, allow_inf_nan=False)
    rel_tolerance: float = Field(1e-6, ge=0, allow_inf_nan=False)
    max_mismatch_share: float = Field(
        0.01, ge=0, le=1, description="a feature whose share of differing rows is above this"
    )
    max_rows: int = Field(
        100_000, ge=1, le=10_000_000, description="rows compared per run (a seeded sample)"
    )
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @field_validator("feature_view")
    @classmethod
    def _view(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_view_ref(value, field="feature_view")
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("features")
    @classmethod
    def _columns(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for name in value:
            try:
                validate_column(name, field="feature")
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        if len(set(value)) != len(value):
            raise ValueError("a feature is named twice")
        return value

    def view_ref(self) -> tuple[str, int | None] | None:
        """The view named, if any: (name, version or None for the pinned or latest)."""
        if self.feature_view is None:
            return None
        return parse_view_ref(self.feature_view, field="skew.feature_view")


class MonitorSpec(_Spec):
    """A data-quality monitor compares traffic with a baseline; a model-quality monitor
    scores predictions against ground truth; a bias monitor compares the outcomes of two
    groups of that labelled traffic; an attribution-drift monitor compares which features
    the served model leans on in traffic with a reference ranking; a feature-skew monitor
    compares the feature values served with the same feature view recomputed offline.
    ``window_hours`` is how much traffic a run reads: the hours before its scheduled time
    (or before now, on demand)."""

    name: str
    kind: Literal["data_quality", "model_quality", "bias", "attribution_drift", "feature_skew"]
    endpoint: str
    variant: str | None = None
    baseline: str | None = None
    schedule: str | None = Field(None, description="cron, e.g. '0 * * * *' for hourly")
    timezone: str = "UTC"
    window_hours: float = Field(1.0, gt=0, le=24 * 366)
    include_shadow: StrictBool = False
    drift: dict[str, DriftOverride] = Field(default_factory=dict)
    model_quality: ModelQuality | None = None
    bias: Bias | None = None
    attribution: Attribution | None = None
    skew: Skew | None = None
    description: str = Field("", max_length=2000)

    @field_validator("name", "endpoint", "baseline")
    @classmethod
    def _names(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            return validate_name(value, field=str(info.field_name))
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid cron expression")
        return value

    @model_validator(mode="after")
    def _kind(self) -> MonitorSpec:
        if self.kind == "data_quality" and self.baseline is None:
            raise ValueError("a data_quality monitor needs a baseline")
        if self.kind == "model_quality" and self.model_quality is None:
            raise ValueError("a model_quality monitor needs model_quality settings")
        if self.kind != "model_quality" and self.model_quality is not None:
            raise ValueError("model_quality settings belong to a model_quality monitor")
        if self.kind == "bias" and self.bias is None:
            raise ValueError("a bias monitor needs bias settings (facet, ...)")
        if self.kind != "bias" and self.bias is not None:
            raise ValueError("bias settings belong to a bias monitor")
        if self.kind != "attribution_drift" and self.attribution is not None:
            raise ValueError("attribution settings belong to an attribution_drift monitor")
        if self.kind == "attribution_drift" and self.attribution is None:
            self.attribution = Attribution()
        if self.kind != "feature_skew" and self.skew is not None:
            raise ValueError("skew settings belong to a feature_skew monitor")
        if self.kind == "feature_skew" and self.skew is None:
            self.skew = Skew()
        return self

    def overrides(self) -> dict[str, Any]:
        return {name: rule.model_dump() for name, rule in self.drift.items()}
