"""The console's monitoring pages, what a SageMaker Model Monitor user looks for:

- ``/monitoring``: every monitor with its last run and the violations still open (those
  of its newest completed run), and the alerts monitors fired lately with how their
  deliveries went;
- ``/monitoring/{monitor}``: drift per feature over the monitor's runs (data quality) or
  its metrics over runs (model quality, bias, attribution drift), then the runs, paged;
- ``/monitoring/{monitor}/runs/{run_id}``: one run's report — per feature the baseline's
  histogram beside the window's, the violations, the statistics side by side.

Charts are drawn from what the service already keeps: a run's ``summary`` holds each
column's drift scores and each metric, so the charts over time read run rows, never the
reports themselves; only the run page opens its report.

Actions (run now, enable, disable) need ``editor``, as ``POST /api/v1/monitors/...`` do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from slipway.console import charts
from slipway.console.paging import Page, page_number, paginate
from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, Id, action, done, here
from slipway.console.session import services_of, viewer
from slipway.core.errors import NotFound
from slipway.monitoring.drift import OTHER
from slipway.monitoring.resources import Monitor, MonitorReport, MonitorRun
from slipway.monitoring.service import Monitoring
from slipway.security.tokens import Role

router = APIRouter(route_class=ConsoleRoute)

MONITORS_PER_PAGE = 50
RUNS_PER_PAGE = 25
# The charts over time draw the newest runs (the service lists at most 1000).
CHART_RUNS = 200
RECENT_ALERTS = 20
KIND_LABELS = {
    "data_quality": "Data quality / drift",
    "model_quality": "Model quality",
    "bias": "Bias",
    "attribution_drift": "Attribution drift",
    "feature_skew": "Feature skew (online / offline)",
}


def _monitoring(request: Request) -> Monitoring:
    return services_of(request).in_workspace(viewer(request).workspace).monitoring


# -- reading ------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A finite float, or None (bools, text, NaN and missing values are not points)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _charted(runs: Sequence[MonitorRun]) -> list[MonitorRun]:
    """The runs a chart over time draws: completed ones that read some traffic."""
    return [r for r in runs if r.state == "completed" and r.status != "no_data"]


def drift_series(runs: Sequence[MonitorRun]) -> dict[str, list[tuple[datetime, float]]]:
    """Per feature, its PSI at the end of each run's window (the traffic it describes).
    PSI is drawn whatever a column's rule decides on, so every feature shares one scale."""
    series: dict[str, list[tuple[datetime, float]]] = {}
    for run in _charted(runs):
        for feature, scores in (run.summary.get("drift") or {}).items():
            value = _number(scores.get("psi"))
            if value is not None:
                series.setdefault(feature, []).append((run.window_end, value))
    return dict(sorted(series.items()))


def metric_series(runs: Sequence[MonitorRun]) -> dict[str, list[tuple[datetime, float]]]:
    """Per metric (model quality, bias) or model version (attribution drift: its NDCG),
    its value in each run."""
    series: dict[str, list[tuple[datetime, float]]] = {}
    for run in _charted(runs):
        values = dict(run.summary.get("metrics") or {})
        values |= {f"ndcg {model}": v for model, v in (run.summary.get("ndcg") or {}).items()}
        for name, raw in values.items():
            value = _number(raw)
            if value is not None:
                series.setdefault(name, []).append((run.window_end, value))
    return dict(sorted(series.items()))


def _drift_chart(runs: Sequence[MonitorRun]) -> Markup:
    return charts.line_chart(
        "Drift per feature (PSI) by run",
        drift_series(runs),
        y_label="PSI",
        empty="no completed run with traffic yet",
    )


def _metric_chart(monitor: Monitor, runs: Sequence[MonitorRun]) -> Markup:
    title = {
        "model_quality": "Model quality by run",
        "bias": "Bias metrics by run",
        "attribution_drift": "Attribution NDCG by run",
        "feature_skew": "Share of rows served unlike the view, per feature, by run",
    }.get(monitor.kind, "Metrics by run")
    return charts.line_chart(
        title, metric_series(runs), empty="no completed run with labelled traffic yet"
    )


def feature_histogram(feature: str, entry: Mapping[str, Any]) -> Markup | None:
    """The baseline's histogram beside the window's for one column of a data-quality
    report: numbers over the baseline's bins, categories over its most common values.

    A report keeps a numeric column's interior edges only (its first and last bins are
    open); the chart labels each bin by its lower edge, so the outer ends are the
    smallest and largest values either side saw."""
    histogram = (entry.get("drift") or {}).get("histogram")
    if not histogram:
        return None
    groups = {"baseline": histogram["baseline"], "current": histogram["current"]}
    title = f"{feature}: baseline and current distribution"
    if "categories" in histogram:
        labels = ["other" if c == OTHER else str(c) for c in histogram["categories"]]
        return charts.histograms(title, None, groups, categories=labels)
    interior = [float(e) for e in histogram.get("edges", [])]
    lows = [_number((entry.get(side) or {}).get("min")) for side in ("baseline", "current")]
    highs = [_number((entry.get(side) or {}).get("max")) for side in ("baseline", "current")]
    low = min((v for v in lows if v is not None), default=-math.inf)
    high = max((v for v in highs if v is not None), default=math.inf)
    edges = [min(low, interior[0]) if interior else low, *interior]
    edges.append(max(high, interior[-1]) if interior else high)
    return charts.histograms(title, edges, groups)


def _statistics(report: MonitorReport) -> list[dict[str, Any]]:
    """One row per column of a data-quality report, for its statistics table."""
    rows = []
    for name, entry in (report.columns or {}).items():
        drift = entry.get("drift") or {}
        rule = drift.get("rule") or {}
        rows.append(
            {
                "name": name,
                "type": entry.get("type"),
                "baseline_type": entry.get("baseline_type"),
                "role": entry.get("role"),
                "completeness": entry.get("completeness"),
                "baseline_completeness": entry.get("baseline_completeness"),
                "current": entry.get("current") or {},
                "baseline": entry.get("baseline") or {},
                "method": rule.get("method"),
                "threshold": rule.get("threshold"),
                "score": drift.get(rule["method"]) if rule.get("method") else None,
                "psi": drift.get("psi"),
                "drifted": bool(entry.get("drifted")),
            }
        )
    return rows


# -- pages --------------------------------------------------------------------------------


@router.get("/monitoring")
def monitors(request: Request) -> Response:
    """Every monitor, its last run and open violations; the alerts monitors fired."""
    services = services_of(request).in_workspace(viewer(request).workspace)
    page = paginate(list(services.monitoring.list()), request, MONITORS_PER_PAGE)
    latest = services.monitoring.latest_runs()
    completed = services.monitoring.latest_runs(completed=True)
    alerts = list(services.alerts.fired(event_prefix="monitor.", limit=RECENT_ALERTS))
    return render(
        request,
        "monitoring_list.html",
        title="Monitoring",
        page=page,
        page_link=lambda n: here(request, "/monitoring", page=n),
        latest=latest,
        completed=completed,
        alerts=alerts,
        kinds=KIND_LABELS,
    )


@router.get("/monitoring/{monitor}")
def monitor_page(request: Request, monitor: str) -> Response:
    """A monitor: its settings, drift or metrics over its runs, and its runs (paged)."""
    monitoring = _monitoring(request)
    found = monitoring.get(monitor)
    number = page_number(request)
    total = monitoring.count_runs(monitor)
    runs = list(monitoring.runs(monitor, limit=RUNS_PER_PAGE, offset=(number - 1) * RUNS_PER_PAGE))
    page = Page(runs, number, total, RUNS_PER_PAGE)
    recent = list(monitoring.runs(monitor, limit=CHART_RUNS))
    chart = _drift_chart(recent) if found.kind == "data_quality" else _metric_chart(found, recent)
    latest = next((r for r in recent if r.state == "completed" and r.summary), None)
    return render(
        request,
        "monitoring_monitor.html",
        title=f"Monitor {found.name}",
        monitor=found,
        can_edit=viewer(request).may(Role.EDITOR),
        kind_label=KIND_LABELS.get(found.kind, found.kind),
        chart=chart,
        charted=min(len(recent), CHART_RUNS),
        latest=latest,
        page=page,
        page_link=lambda n: here(request, f"/monitoring/{monitor}", page=n),
    )


@router.get("/monitoring/{monitor}/runs/{run_id}")
def run_page(request: Request, monitor: str, run_id: Id) -> Response:
    """A run and, once it has completed, its report."""
    monitoring = _monitoring(request)
    found = monitoring.get(monitor)
    run = monitoring.get_run(run_id)
    if run.monitor != found.name:
        raise NotFound(f"monitor {monitor!r} has no run {run_id}")
    if request.headers.get("x-console-fragment"):
        # The page's live region, polled until the run has finished.
        return render(request, "monitoring_run_state.html", title=f"Run {run.id}", run=run)
    report = monitoring.report(run_id) if run.state == "completed" else None
    features: list[tuple[str, Markup | None]] = []
    if report is not None and report.columns:
        features = [(n, feature_histogram(n, e)) for n, e in report.columns.items()]
    extra = report.model_dump(mode="json", exclude_none=True) if report is not None else {}
    return render(
        request,
        "monitoring_run.html",
        title=f"Run {run.id} of {found.name}",
        monitor=found,
        run=run,
        report=report,
        features=features,
        statistics=_statistics(report) if report is not None else [],
        metrics=(report.metrics or {}) if report is not None else {},
        models=(report.models or []) if report is not None else [],
        raw=extra,
    )


# -- actions ------------------------------------------------------------------------------


@router.post("/monitoring/{monitor}/run")
async def run_now(request: Request, monitor: str) -> Response:
    """Queue a run over the monitor's window before now; a worker executes it."""
    who, _ = await action(request, Role.EDITOR)
    monitoring = _monitoring(request)
    run = await anyio.to_thread.run_sync(lambda: monitoring.run(monitor, actor=who.name))
    return done(request, here(request, f"/monitoring/{monitor}/runs/{run.id}"), "run queued")


@router.post("/monitoring/{monitor}/enable")
async def enable(request: Request, monitor: str) -> Response:
    """Resume the monitor's schedule."""
    who, _ = await action(request, Role.EDITOR)
    monitoring = _monitoring(request)
    await anyio.to_thread.run_sync(lambda: monitoring.set_enabled(monitor, True, actor=who.name))
    return done(request, here(request, f"/monitoring/{monitor}"), "enabled")


@router.post("/monitoring/{monitor}/disable")
async def disable(request: Request, monitor: str) -> Response:
    """Stop the monitor's scheduled runs (running it on demand still works)."""
    who, _ = await action(request, Role.EDITOR)
    monitoring = _monitoring(request)
    await anyio.to_thread.run_sync(lambda: monitoring.set_enabled(monitor, False, actor=who.name))
    return done(request, here(request, f"/monitoring/{monitor}"), "disabled")
