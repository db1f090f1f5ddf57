"""The monitoring capability's resources: baselines and their documents, monitors, their
runs and reports, ground-truth uploads and A/B test reports — what
:class:`~slipway.monitoring.service.Monitoring` and
:class:`~slipway.monitoring.baselines.Baselines` return, what the REST API sends, what the
remote client decodes and what the CLI prints.

Also the request bodies the REST API takes (``extra="forbid"``: a misspelt field is an
error naming it). A monitor's own body is :class:`~slipway.monitoring.spec.MonitorSpec`.

Documents whose keys depend on their kind (a report of a data-quality run has columns, one
of a bias run has groups) keep the fields they were written with (``extra="allow"``):
the fields declared here are the ones every face documents and reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from slipway.core.resource import Resource
from slipway.monitoring.spec import MonitorSpec

# -- baselines --------------------------------------------------------------------------


class Baseline(Resource):
    """A reference dataset's profile, which data-quality monitors compare traffic with."""

    table_fields: ClassVar[tuple[str, ...]] = ("name", "model", "rows", "columns", "created_at")

    name: str
    model: str | None = Field(
        default=None, description="name:version the baseline is bound to, if any"
    )
    source: dict[str, Any] = Field(description="the dataset it was built from")
    rows: int
    # A Field, so the inherited columns() classmethod is not taken for its default.
    columns: int = Field(description="how many columns were profiled")
    digest: str = Field(description="sha256 of the statistics document")
    created_by: str
    created_at: datetime


class BaselineStatistics(Resource):
    """A baseline's ``statistics.json`` (shaped after SageMaker Model Monitor's)."""

    model_config = ConfigDict(frozen=True, extra="allow", from_attributes=True)

    schema_version: int
    dataset: dict[str, Any] = Field(description="rows and source")
    model: dict[str, Any] | None = Field(default=None, description="{name, version} or null")
    columns: dict[str, dict[str, Any]] = Field(
        description="per column: role, type, count, missing, completeness and a numeric "
        "(min, max, mean, std, quantiles, histogram, sketch) or categorical (distinct, "
        "top, categories) profile"
    )


class BaselineConstraints(Resource):
    """A baseline's ``constraints.json``: what a data-quality run checks."""

    model_config = ConfigDict(frozen=True, extra="allow", from_attributes=True)

    schema_version: int
    columns: dict[str, dict[str, Any]] = Field(
        description="per column: type, role, completeness, range {min, max}, categories "
        "and drift {method: psi|ks_statistic|ks_p_value|chi2_p_value, threshold}"
    )
    checks: dict[str, Any] = Field(
        description="missing_columns, extra_columns, types (true/false), "
        "out_of_range_tolerance and new_category_tolerance (fractions 0-1)"
    )


class BaselineCreate(BaseModel):
    """The body that builds a baseline (``POST /baselines``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    source: dict[str, Any] = Field(
        description=(
            'exactly one of {"file": uri} (Parquet, CSV or JSON lines), {"query": sql}, '
            '{"training_set": {entities, features, timestamp_column}} or '
            '{"model_version": true} (the bound model\'s recorded training set)'
        )
    )
    model: str | None = Field(
        default=None,
        description="a model version (name:3 or name@alias): keeps its input columns and "
        "scores the dataset so the baseline describes its predictions too",
    )
    columns: list[str] | None = Field(default=None, description="the columns to profile")
    prediction_column: str | None = Field(
        default=None, description="a column of the dataset holding predictions already"
    )


class ConstraintsUpdate(BaseModel):
    """New constraints for a baseline (``PUT /baselines/{name}/constraints``): what
    ``GET`` returns, edited. Their content is checked against the baseline's statistics
    by the service, whose errors name ``constraints.<path>``; left-out keys take their
    defaults."""

    model_config = ConfigDict(extra="forbid", strict=True)

    schema_version: int | None = Field(default=None, description="ignored: the server's")
    columns: Any = Field(
        default=None,
        description="per column: completeness, range {min, max}, categories, drift "
        "{method, threshold}",
        json_schema_extra={"type": "object"},
    )
    checks: Any = Field(
        default=None,
        description="missing_columns, extra_columns, types (true/false), "
        "out_of_range_tolerance, new_category_tolerance (0-1)",
        json_schema_extra={"type": "object"},
    )

    def document(self) -> dict[str, Any]:
        """The fields given, as the service validates them."""
        return self.model_dump(exclude_unset=True, exclude={"schema_version"})


# -- monitors and runs ------------------------------------------------------------------


class Monitor(Resource):
    """A data-quality, model-quality, bias or attribution-drift monitor of an endpoint."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "kind",
        "endpoint",
        "schedule",
        "enabled",
        "next_run_at",
        "last_status",
        "runs",
    )

    name: str
    kind: str = Field(
        description="data_quality, model_quality, bias, attribution_drift or feature_skew"
    )
    endpoint: str
    spec: MonitorSpec = Field(description="the monitor spec as stored")
    schedule: str | None = Field(
        default=None, description="cron expression, or null for on demand only"
    )
    timezone: str
    enabled: bool
    next_run_at: datetime | None = None
    last_status: str | None = Field(
        default=None,
        description="no_violations, violations, no_data or failed, of the newest run",
    )
    runs: int = Field(description="how many runs were started")
    created_by: str
    created_at: datetime
    updated_at: datetime


class MonitorRun(Resource):
    """One run of a monitor over a window: queued → running → completed | failed."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "monitor",
        "state",
        "status",
        "trigger",
        "window_start",
        "window_end",
        "rows",
        "violations",
        "finished_at",
    )

    id: int
    monitor: str
    state: str = Field(description="queued, running, completed or failed")
    status: str | None = Field(
        default=None, description="when completed: no_violations, violations or no_data; failed"
    )
    trigger: str = Field(description="manual or schedule")
    scheduled_for: datetime | None = None
    window_start: datetime
    window_end: datetime
    rows: int = Field(description="captured rows read")
    violations: int
    summary: dict[str, Any] = Field(
        description="violations per check and drift scores (data quality) or metrics "
        "(model quality, bias, attribution drift: ndcg per version), without opening the report"
    )
    error: str | None = None
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "failed")


class MonitorRunWindow(BaseModel):
    """The window of an on-demand run (``POST /monitors/{name}/runs``). Not strict: the
    API validates parsed JSON, where a time is a string to read."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | None = Field(
        default=None,
        description="ISO 8601 with a time zone; default: end minus the monitor's window",
    )
    end: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with a time zone; default: now"
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # Not a number of seconds, which pydantic would otherwise read as a time.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an ISO 8601 time with a time zone")
        return value


class MonitorReport(Resource):
    """A completed run's report. The common fields are declared; the rest depend on the
    monitor's kind and are kept as written (``extra="allow"``)."""

    model_config = ConfigDict(frozen=True, extra="allow", from_attributes=True)

    kind: str = Field(
        description="data_quality, model_quality, bias, attribution_drift or feature_skew"
    )
    monitor: str
    endpoint: str
    run_id: int
    status: str = Field(description="no_violations, violations or no_data")
    window_start: datetime
    window_end: datetime
    rows: int
    violations: list[dict[str, Any]] = Field(
        description="each names its column (or metric), check, message, value and threshold"
    )
    baseline: str | None = Field(default=None, description="data quality: the baseline")
    drifted: list[str] | None = Field(default=None, description="data quality: drifted columns")
    columns: dict[str, Any] | None = Field(
        default=None,
        description="data quality: per column its type, completeness, summary next to the "
        "baseline's, and drift scores with both histograms",
    )
    metrics: dict[str, Any] | None = Field(
        default=None,
        description="model quality: metrics; attribution drift: the lowest ndcg of the "
        "versions served; bias: CI, DPL, KL, JS, DI, DPPL, AD, RD, "
        "equal_opportunity_difference, equalized_odds_difference (null where undefined); "
        "feature skew: each feature's share of rows served unlike the view recomputed",
    )
    labelled: int | None = Field(default=None, description="model quality, bias: rows with a label")
    unlabelled: int | None = Field(
        default=None, description="model quality, bias: rows without a label yet"
    )
    problem_type: str | None = Field(default=None, description="model quality")
    facet: dict[str, Any] | None = Field(
        default=None, description="bias: the facet column and its values or threshold (group d)"
    )
    groups: dict[str, Any] | None = Field(
        default=None, description="bias: rows, label and prediction rates of groups a and d"
    )
    undefined: dict[str, str] | None = Field(
        default=None, description="bias: why a metric is null (an empty group, 0/0, ...)"
    )
    threshold: float | None = Field(default=None, description="attribution drift: NDCG bound")
    top_k: int | None = Field(default=None, description="attribution drift: features ranked")
    models: list[dict[str, Any]] | None = Field(
        default=None,
        description="attribution drift: per model version served, rows, rows explained, "
        "ndcg, and per feature its mean |SHAP| and rank in traffic next to the reference's",
    )
    compared: int | None = Field(default=None, description="feature skew: rows compared")
    feature_view: dict[str, Any] | None = Field(
        default=None, description="feature skew: the view recomputed (name, version, digest)"
    )
    features: dict[str, Any] | None = Field(
        default=None,
        description="feature skew: per feature rows, mismatches, share, missing served / "
        "offline, and for numbers the |difference| quantiles and a histogram by decade",
    )
    skewed: list[str] | None = Field(
        default=None, description="feature skew: features above max_mismatch_share"
    )


# -- ground truth -----------------------------------------------------------------------


class GroundTruthRecord(BaseModel):
    """One label (a JSON upload's record; the columns of a CSV or Arrow upload)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    inference_id: str = Field(description="the X-Slipway-Inference-Id of the prediction")
    row: int = Field(default=0, ge=0, description="the row's index in its request")
    label: bool | int | float | str = Field(description="the real outcome")


class GroundTruthUpload(Resource):
    """Labels stored for an endpoint's captured predictions."""

    endpoint: str
    records: int = Field(description="labels stored")
    key: str = Field(description="where the upload was stored in the artifact store")


# -- A/B tests --------------------------------------------------------------------------


class ABComparison(Resource):
    """One variant against the reference on the rule's metric, and the rule's verdict."""

    table_fields: ClassVar[tuple[str, ...]] = ("variant", "versus", "difference", "verdict")

    variant: str
    versus: str
    difference: float | None = Field(
        description="variant minus reference on the metric, turned so positive is better"
    )
    interval: list[float] | None = Field(description="bootstrap confidence interval")
    verdict: str = Field(description="winner, loser, or no difference yet")
    reason: str


class ABReport(Resource):
    """An endpoint's A/B test over a window (see :mod:`slipway.monitoring.ab_test`):
    per-variant quality from ground truth beside its traffic figures, and each variant
    against the reference."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "endpoint",
        "since",
        "until",
        "captured_rows",
        "labelled_rows",
        "metric",
        "reference",
    )

    endpoint: str
    since: datetime
    until: datetime
    captured_rows: int
    labelled_rows: int
    metric: str
    direction: str
    reference: str
    rule: dict[str, Any]
    variants: dict[str, dict[str, Any]] = Field(
        description="per variant: labelled samples (inference ids), rows, each metric, traffic"
    )
    comparisons: list[ABComparison]


__all__ = [
    "ABComparison",
    "ABReport",
    "Baseline",
    "BaselineConstraints",
    "BaselineCreate",
    "BaselineStatistics",
    "ConstraintsUpdate",
    "GroundTruthRecord",
    "GroundTruthUpload",
    "Monitor",
    "MonitorReport",
    "MonitorRun",
    "MonitorRunWindow",
]
