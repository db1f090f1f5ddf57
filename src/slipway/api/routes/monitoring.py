"""Monitoring over REST: baselines, monitors, their runs and reports, and ground truth.

A baseline is built synchronously from a dataset (its statistics and suggested
constraints are returned or stored before the response); constraints can be edited and
are validated against the statistics. A monitor run is queued (202) and executed by a
worker: poll ``GET /monitor-runs/{id}`` until its state is ``completed`` or ``failed``,
then read ``GET /monitor-runs/{id}/report``. Ground truth for captured predictions is
posted per endpoint as JSON, JSON lines or CSV; a bad record rejects the whole upload;
model-quality and bias monitors score against it.
Bodies are validated by the services, so bad input is a 400 naming the field and stores
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from slipway.api.auth import Principal, authorize, services_of
from slipway.api.routes import Int64
from slipway.monitoring import uploads
from slipway.monitoring.spec import MonitorSpec

_caller = authorize()
router = APIRouter(tags=["monitoring"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


class BaselineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class BaselineOut(BaseModel):
    name: str
    model: str | None = Field(description="name:version the baseline is bound to, if any")
    source: dict[str, Any]
    rows: int
    columns: int
    digest: str = Field(description="sha256 of the statistics document")
    created_by: str
    created_at: datetime


class StatisticsOut(BaseModel):
    """A baseline's ``statistics.json`` (shaped after SageMaker Model Monitor's)."""

    model_config = ConfigDict(extra="allow")

    schema_version: int
    dataset: dict[str, Any] = Field(description="rows and source")
    model: dict[str, Any] | None = Field(description="{name, version} or null")
    columns: dict[str, dict[str, Any]] = Field(
        description="per column: role, type, count, missing, completeness and a numeric "
        "(min, max, mean, std, quantiles, histogram, sketch) or categorical (distinct, "
        "top, categories) profile"
    )


class ConstraintsOut(BaseModel):
    """A baseline's ``constraints.json``: what a data-quality run checks."""

    model_config = ConfigDict(extra="allow")

    schema_version: int
    columns: dict[str, dict[str, Any]] = Field(
        description="per column: type, role, completeness, range {min, max}, categories "
        "and drift {method: psi|ks_statistic|ks_p_value|chi2_p_value, threshold}"
    )
    checks: dict[str, Any] = Field(
        description="missing_columns, extra_columns, types (true/false), "
        "out_of_range_tolerance and new_category_tolerance (fractions 0-1)"
    )


ConstraintsIn = Annotated[
    dict[str, Any],
    Body(
        description="constraints ({columns: {...}, checks: {...}}), validated against the "
        "baseline's statistics; left-out keys take their defaults"
    ),
]


class MonitorOut(BaseModel):
    name: str
    kind: str = Field(description="data_quality, model_quality, bias or attribution_drift")
    endpoint: str
    spec: dict[str, Any] = Field(description="the monitor spec as stored")
    schedule: str | None = Field(description="cron expression, or null for on demand only")
    timezone: str
    enabled: bool
    next_run_at: datetime | None
    last_status: str | None = Field(
        description="no_violations, violations, no_data or failed, of the newest run"
    )
    runs: int = Field(description="how many runs were started")
    created_by: str
    created_at: datetime
    updated_at: datetime


class MonitorRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | None = Field(
        default=None,
        description="ISO 8601 with a time zone; default: end minus the monitor's window",
    )
    end: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with a time zone; default: now"
    )


class MonitorRunOut(BaseModel):
    id: int
    monitor: str
    state: str = Field(description="queued, running, completed or failed")
    status: str | None = Field(
        description="when completed: no_violations, violations or no_data; failed"
    )
    trigger: str = Field(description="manual or schedule")
    scheduled_for: datetime | None
    window_start: datetime
    window_end: datetime
    rows: int = Field(description="captured rows read")
    violations: int
    summary: dict[str, Any] = Field(
        description="violations per check and drift scores (data quality) or metrics "
        "(model quality, bias, attribution drift: ndcg per version), without opening the report"
    )
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ReportOut(BaseModel):
    """A completed run's report."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(description="data_quality, model_quality, bias or attribution_drift")
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
        "equal_opportunity_difference, equalized_odds_difference (null where undefined)",
    )
    labelled: int | None = Field(default=None, description="model quality, bias: rows with a label")
    facet: dict[str, Any] | None = Field(
        default=None, description="bias: the facet column and its values or threshold (group d)"
    )
    groups: dict[str, Any] | None = Field(
        default=None, description="bias: rows, label and prediction rates of groups a and d"
    )
    undefined: dict[str, str] | None = Field(
        default=None, description="bias: why a metric is null (an empty group, 0/0, ...)"
    )
    models: list[dict[str, Any]] | None = Field(
        default=None,
        description="attribution drift: per model version served, rows, rows explained, "
        "ndcg, and per feature its mean |SHAP| and rank in traffic next to the reference's",
    )


class GroundTruthRecord(BaseModel):
    inference_id: str = Field(description="the X-Slipway-Inference-Id of the prediction")
    row: int = Field(default=0, ge=0, description="the row's index in its request")
    label: bool | int | float | str = Field(description="the real outcome")


class GroundTruthOut(BaseModel):
    endpoint: str
    records: int = Field(description="labels stored")
    key: str = Field(description="where the upload was stored in the artifact store")


_GROUND_TRUTH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "at most the server's max_body_bytes; validated whole, all or nothing",
        "content": {
            uploads.JSON: {
                "schema": {
                    "type": "object",
                    "required": ["records"],
                    "properties": {
                        "records": {
                            "type": "array",
                            "items": GroundTruthRecord.model_json_schema(),
                        }
                    },
                }
            },
            uploads.NDJSON: {
                "schema": {"type": "string", "description": "one record object per line"}
            },
            uploads.CSV: {
                "schema": {
                    "type": "string",
                    "description": "a header row inference_id,row,label then one row each",
                }
            },
        },
    }
}


async def _upload(request: Request) -> bytes:
    # The body is already bounded by RequestLimits (413 past max_body_bytes).
    return await request.body()


# -- baselines ------------------------------------------------------------------------


@router.get("/baselines", response_model=list[BaselineOut])
def list_baselines(request: Request) -> list[dict[str, Any]]:
    return services_of(request).baselines.list()


@router.post("/baselines", status_code=201, response_model=BaselineOut)
def create_baseline(body: BaselineIn, request: Request, caller: Caller) -> dict[str, Any]:
    """Profile the dataset and suggest constraints (synchronously)."""
    return services_of(request).baselines.create(
        body.name,
        source=body.source,
        actor=caller.name,
        model=body.model,
        columns=body.columns,
        prediction_column=body.prediction_column,
    )


@router.get("/baselines/{name}", response_model=BaselineOut)
def describe_baseline(name: str, request: Request) -> dict[str, Any]:
    return services_of(request).baselines.get(name)


@router.get("/baselines/{name}/statistics", response_model=StatisticsOut)
def baseline_statistics(name: str, request: Request) -> dict[str, Any]:
    return services_of(request).baselines.statistics(name)


@router.get("/baselines/{name}/constraints", response_model=ConstraintsOut)
def baseline_constraints(name: str, request: Request) -> dict[str, Any]:
    return services_of(request).baselines.constraints(name)


@router.put("/baselines/{name}/constraints", response_model=ConstraintsOut)
def set_baseline_constraints(
    name: str, body: ConstraintsIn, request: Request, caller: Caller
) -> dict[str, Any]:
    """Replace the constraints; returns them normalized (defaults filled in)."""
    return services_of(request).baselines.set_constraints(name, body, actor=caller.name)


@router.delete("/baselines/{name}", status_code=204)
def delete_baseline(name: str, request: Request) -> None:
    """Delete a baseline and its documents; 409 while a monitor uses it."""
    services_of(request).baselines.delete(name)


# -- monitors -------------------------------------------------------------------------


@router.get("/monitors", response_model=list[MonitorOut])
def list_monitors(request: Request, endpoint: str | None = None) -> list[dict[str, Any]]:
    return services_of(request).monitoring.list(endpoint=endpoint)


@router.post("/monitors", status_code=201, response_model=MonitorOut)
def create_monitor(body: MonitorSpec, request: Request, caller: Caller) -> dict[str, Any]:
    return services_of(request).monitoring.create(body, actor=caller.name)


@router.get("/monitors/{name}", response_model=MonitorOut)
def describe_monitor(name: str, request: Request) -> dict[str, Any]:
    return services_of(request).monitoring.get(name)


@router.post("/monitors/{name}/enable", response_model=MonitorOut)
def enable_monitor(name: str, request: Request, caller: Caller) -> dict[str, Any]:
    """Resume the monitor's schedule (its next run is the next cron time from now)."""
    return services_of(request).monitoring.set_enabled(name, True, actor=caller.name)


@router.post("/monitors/{name}/disable", response_model=MonitorOut)
def disable_monitor(name: str, request: Request, caller: Caller) -> dict[str, Any]:
    """Stop scheduled runs; on-demand runs still work."""
    return services_of(request).monitoring.set_enabled(name, False, actor=caller.name)


@router.delete("/monitors/{name}", status_code=204)
def delete_monitor(name: str, request: Request, caller: Caller) -> None:
    services_of(request).monitoring.delete(name, actor=caller.name)


@router.post("/monitors/{name}/runs", status_code=202, response_model=MonitorRunOut)
def start_monitor_run(
    name: str, request: Request, caller: Caller, body: MonitorRunIn | None = None
) -> dict[str, Any]:
    """Queue a run over ``[start, end)``; a worker executes it."""
    window = body or MonitorRunIn()
    return services_of(request).monitoring.run(
        name, actor=caller.name, start=window.start, end=window.end
    )


@router.get("/monitors/{name}/runs", response_model=list[MonitorRunOut])
def list_monitor_runs(
    name: str, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The monitor's runs, newest first."""
    return services_of(request).monitoring.runs(name, limit=limit)


@router.get("/monitor-runs/{run_id}", response_model=MonitorRunOut)
def describe_monitor_run(run_id: Int64, request: Request) -> dict[str, Any]:
    return services_of(request).monitoring.get_run(run_id)


# Unset fields are left out: a model-quality report has no drifted columns, not null ones.
@router.get(
    "/monitor-runs/{run_id}/report", response_model=ReportOut, response_model_exclude_unset=True
)
def monitor_run_report(run_id: Int64, request: Request) -> dict[str, Any]:
    """The run's report; 404 until the run has completed."""
    return services_of(request).monitoring.report(run_id)


# -- ground truth ---------------------------------------------------------------------


@router.post(
    "/endpoints/{endpoint}/ground-truth",
    status_code=201,
    response_model=GroundTruthOut,
    openapi_extra=_GROUND_TRUTH_BODY,
    responses={415: {"description": "The body is not JSON, JSON lines or CSV"}},
)
def post_ground_truth(
    endpoint: str, request: Request, body: Annotated[bytes, Depends(_upload)]
) -> dict[str, Any]:
    """Labels for captured predictions, matched by inference id and row; sending the
    same prediction again later corrects its label."""
    records = uploads.parse(body, request.headers.get("content-type", ""))
    return services_of(request).monitoring.put_ground_truth(endpoint, records)
