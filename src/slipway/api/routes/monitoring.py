"""Monitoring over REST: baselines, monitors, their runs and reports, and ground truth.

A baseline is built synchronously from a dataset (its statistics and suggested
constraints are returned or stored before the response); constraints can be edited and
are validated against the statistics. A monitor run is queued (202) and executed by a
worker: poll ``GET /monitor-runs/{id}`` until its state is ``completed`` or ``failed``,
then read ``GET /monitor-runs/{id}/report``. Ground truth for captured predictions is
posted per endpoint as JSON, JSON lines, CSV or an Arrow IPC stream (a table, as the
remote client sends it); a bad record rejects the whole upload; model-quality and bias
monitors score against it.
Bodies are validated by the services, so bad input is a 400 naming the field and stores
nothing. ``PUT /monitors/{name}`` replaces a monitor's spec (the create body, ``name``
optional: :mod:`slipway.api.bodies`; its kind may not change); its runs stay.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from slipway.api.auth import Principal, authorize, services_of, workspace_of
from slipway.api.bodies import named
from slipway.api.limits import whole_body
from slipway.api.paths import confine_baseline
from slipway.api.routes import Int64
from slipway.core.arrowipc import ARROW_STREAM, from_ipc
from slipway.core.resource import Listing
from slipway.monitoring import uploads
from slipway.monitoring.baselines import Baselines
from slipway.monitoring.resources import (
    Baseline,
    BaselineConstraints,
    BaselineCreate,
    BaselineStatistics,
    ConstraintsUpdate,
    GroundTruthRecord,
    GroundTruthUpload,
    Monitor,
    MonitorReport,
    MonitorRun,
    MonitorRunWindow,
)
from slipway.monitoring.service import Monitoring
from slipway.monitoring.spec import MonitorSpec

_caller = authorize(scoped=True)
router = APIRouter(tags=["monitoring"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


class MonitorUpdate(MonitorSpec):
    """A monitor's new spec (``PUT /monitors/{name}``): a monitor body whose ``name`` may
    be left out (a monitor cannot be renamed)."""

    name: str | None = None  # type: ignore[assignment]


def monitoring(request: Request) -> Monitoring:
    """The monitors of the request's workspace."""
    return services_of(request).monitoring.in_workspace(workspace_of(request))


def baselines(request: Request) -> Baselines:
    """The baselines of the request's workspace."""
    return services_of(request).baselines.in_workspace(workspace_of(request))


_GROUND_TRUTH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "at most the server's max_body_bytes (max_table_bytes for Arrow);"
        " validated whole, all or nothing",
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
            ARROW_STREAM: {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "an Arrow IPC stream of columns inference_id, row, label",
                }
            },
        },
    }
}


async def _upload(request: Request) -> bytes:
    # The body is already bounded by RequestLimits (413 past max_body_bytes).
    return await whole_body(request)  # bounded by RequestLimits


# -- baselines ------------------------------------------------------------------------


@router.get("/baselines", response_model=list[Baseline])
def list_baselines(request: Request) -> Listing[Baseline]:
    return baselines(request).list()


@router.post("/baselines", status_code=201, response_model=Baseline)
def create_baseline(body: BaselineCreate, request: Request, caller: Caller) -> Baseline:
    """Profile the dataset and suggest constraints (synchronously). The files it reads
    must lie under the data roots (api/paths.py): 400 naming the field otherwise."""
    model = confine_baseline(services_of(request), body, workspace_of(request))
    return baselines(request).create(
        body.name,
        source=body.source,
        actor=caller.name,
        model=model,
        columns=body.columns,
        prediction_column=body.prediction_column,
    )


@router.get("/baselines/{name}", response_model=Baseline)
def describe_baseline(name: str, request: Request) -> Baseline:
    return baselines(request).get(name)


@router.get("/baselines/{name}/statistics", response_model=BaselineStatistics)
def baseline_statistics(name: str, request: Request) -> BaselineStatistics:
    return baselines(request).statistics(name)


@router.get("/baselines/{name}/constraints", response_model=BaselineConstraints)
def baseline_constraints(name: str, request: Request) -> BaselineConstraints:
    return baselines(request).constraints(name)


@router.put("/baselines/{name}/constraints", response_model=BaselineConstraints)
def set_baseline_constraints(
    name: str, body: ConstraintsUpdate, request: Request, caller: Caller
) -> BaselineConstraints:
    """Replace the constraints; returns them normalized (defaults filled in)."""
    return baselines(request).set_constraints(name, body, actor=caller.name)


@router.delete("/baselines/{name}", status_code=204)
def delete_baseline(name: str, request: Request, caller: Caller) -> None:
    """Delete a baseline and its documents; 409 while a monitor uses it."""
    baselines(request).delete(name, actor=caller.name)


# -- monitors -------------------------------------------------------------------------


@router.get("/monitors", response_model=list[Monitor])
def list_monitors(request: Request, endpoint: str | None = None) -> Listing[Monitor]:
    return monitoring(request).list(endpoint=endpoint)


@router.post("/monitors", status_code=201, response_model=Monitor)
def create_monitor(body: MonitorSpec, request: Request, caller: Caller) -> Monitor:
    return monitoring(request).create(body, actor=caller.name)


@router.get("/monitors/{name}", response_model=Monitor)
def describe_monitor(name: str, request: Request) -> Monitor:
    return monitoring(request).get(name)


@router.put("/monitors/{name}", response_model=Monitor)
def update_monitor(name: str, body: MonitorUpdate, request: Request, caller: Caller) -> Monitor:
    """Replace the monitor's spec (its kind may not change); its runs and enabled state
    stay, and its next scheduled run moves when its schedule changed."""
    return monitoring(request).update(named(body, name, "monitor"), actor=caller.name)


@router.post("/monitors/{name}/enable", response_model=Monitor)
def enable_monitor(name: str, request: Request, caller: Caller) -> Monitor:
    """Resume the monitor's schedule (its next run is the next cron time from now)."""
    return monitoring(request).set_enabled(name, True, actor=caller.name)


@router.post("/monitors/{name}/disable", response_model=Monitor)
def disable_monitor(name: str, request: Request, caller: Caller) -> Monitor:
    """Stop scheduled runs; on-demand runs still work."""
    return monitoring(request).set_enabled(name, False, actor=caller.name)


@router.delete("/monitors/{name}", status_code=204)
def delete_monitor(name: str, request: Request, caller: Caller) -> None:
    monitoring(request).delete(name, actor=caller.name)


@router.post("/monitors/{name}/runs", status_code=202, response_model=MonitorRun)
def start_monitor_run(
    name: str, request: Request, caller: Caller, body: MonitorRunWindow | None = None
) -> MonitorRun:
    """Queue a run over ``[start, end)``; a worker executes it."""
    window = body or MonitorRunWindow()
    return monitoring(request).run(name, actor=caller.name, start=window.start, end=window.end)


@router.get("/monitors/{name}/runs", response_model=list[MonitorRun])
def list_monitor_runs(
    name: str, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Listing[MonitorRun]:
    """The monitor's runs, newest first."""
    return monitoring(request).runs(name, limit=limit)


@router.get("/monitor-runs/{run_id}", response_model=MonitorRun)
def describe_monitor_run(run_id: Int64, request: Request) -> MonitorRun:
    return monitoring(request).get_run(run_id)


# Unset fields are left out: a model-quality report has no drifted columns, not null ones.
@router.get(
    "/monitor-runs/{run_id}/report",
    response_model=MonitorReport,
    response_model_exclude_unset=True,
)
def monitor_run_report(run_id: Int64, request: Request) -> MonitorReport:
    """The run's report; 404 until the run has completed."""
    return monitoring(request).report(run_id)


# -- ground truth ---------------------------------------------------------------------


@router.post(
    "/endpoints/{endpoint}/ground-truth",
    status_code=201,
    response_model=GroundTruthUpload,
    openapi_extra=_GROUND_TRUTH_BODY,
    responses={415: {"description": "The body is not JSON, JSON lines, CSV or Arrow"}},
)
def post_ground_truth(
    endpoint: str, request: Request, body: Annotated[bytes, Depends(_upload)], caller: Caller
) -> GroundTruthUpload:
    """Labels for captured predictions, matched by inference id and row; sending the
    same prediction again later corrects its label."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    records: Any = (
        from_ipc(body, field="body") if kind == ARROW_STREAM else uploads.parse(body, kind)
    )
    return monitoring(request).put_ground_truth(endpoint, records, actor=caller.name)
