"""The console's endpoints pages: every endpoint of the workspace with what it serves, and
one endpoint's variants, rollout, gateways, live traffic charts, capture and deployment
history, with a rollback to any earlier deployed config.

What a SageMaker user looks for on an endpoint's page: which model versions serve and with
what share of the traffic, whether a rollout is under way and how far it got, whether it is
healthy right now (requests, errors, latency per variant), and a way back. Reads go
through :class:`~slipway.serving.service.Endpoints`; the rollback is the REST API's (same
role: deployer; the service records the audit entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from slipway.console.charts import Point, line_chart
from slipway.console.paging import paginate
from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, action, done, here
from slipway.console.session import services_of, viewer
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_name
from slipway.security.tokens import Role
from slipway.serving.gateway.capture import capture_folder
from slipway.serving.resources import Deployment, Endpoint
from slipway.serving.service import Endpoints
from slipway.serving.spec import DeploymentSpec, EndpointSpec, Strategy, VariantSpec
from slipway.serving.states import UPDATABLE, Outcome
from slipway.serving.stats import WINDOW_SECONDS, TrafficWindow, window_start

router = APIRouter(route_class=ConsoleRoute)

# What the list's "recent requests" counts, and what the live charts span.
RECENT = timedelta(minutes=5)
LIVE_SPAN = timedelta(minutes=15)
LIVE_EVERY_MS = 3000
# Configs a rollback may deploy again: ones that served (not failed or never finished).
SERVED = frozenset({Outcome.DEPLOYED, Outcome.RETIRED})
MAX_VERSION = 2**31 - 1


def _endpoints(request: Request) -> Endpoints:
    return services_of(request).in_workspace(viewer(request).workspace).endpoints


def _create_command(workspace: str) -> str:
    """The CLI command that creates an endpoint in ``workspace``."""
    flag = "" if workspace == DEFAULT_WORKSPACE else f" --workspace {workspace}"
    return f"slipway{flag} endpoints create endpoint.yaml"


# -- what a page shows of an endpoint --------------------------------------------------


@dataclass(frozen=True)
class VariantShare:
    """A production variant of one config and its share of the traffic right now."""

    config_version: int
    role: str  # "active" or "target"
    name: str
    model: str
    weight: float
    share: float  # of all the endpoint's traffic, 0..1


@dataclass(frozen=True)
class Shadow:
    config_version: int
    name: str
    model: str
    sampling_percent: float


def _model(variant: VariantSpec) -> str:
    """The model a stored variant serves: its reference pinned to the resolved version."""
    return variant.model if variant.version is None else f"{variant.model_name}:{variant.version}"


def _serving(endpoint: Endpoint) -> list[tuple[Deployment, str, float]]:
    """(config, role, share of traffic 0..1) of the configs serving or rolling out."""
    percent = endpoint.target_percent if endpoint.target else 0.0
    out = []
    if endpoint.active is not None:
        out.append((endpoint.active, "active", 1 - percent / 100))
    if endpoint.target is not None and endpoint.target.version != endpoint.active_version:
        out.append((endpoint.target, "target", percent / 100))
    return out


def variant_shares(endpoint: Endpoint) -> list[VariantShare]:
    """Each production variant of the active and target configs with its traffic share:
    the config's share of the rollout times the variant's share of the config's weights."""
    rows = []
    for config, role, share in _serving(endpoint):
        total = sum(v.weight for v in config.spec.variants) or 1.0
        for variant in config.spec.variants:
            rows.append(
                VariantShare(
                    config.version,
                    role,
                    variant.name,
                    _model(variant),
                    variant.weight,
                    share * variant.weight / total,
                )
            )
    return rows


def shadows(endpoint: Endpoint) -> list[Shadow]:
    return [
        Shadow(config.version, v.name, _model(v), v.sampling_percent)
        for config, _, _ in _serving(endpoint)
        for v in config.spec.shadow_variants
    ]


def current_spec(endpoint: Endpoint) -> EndpointSpec | None:
    """The spec serving now (the active config), else the one being created."""
    config = endpoint.active or endpoint.target
    return config.spec if config else None


def strategy(spec: DeploymentSpec) -> str:
    """A deployment spec in a few words: how traffic moves and how long each phase bakes."""
    alarms = f"; {len(spec.alarms)} alarm{'s' if len(spec.alarms) != 1 else ''}"
    alarms = alarms if spec.alarms else ""
    if spec.strategy is Strategy.ALL_AT_ONCE:
        bake = f", bake {spec.baking_seconds:g} s" if spec.baking_seconds else ""
        return f"all at once{bake}{alarms}"
    phases = " → ".join(f"{percent:g}%" for percent, _ in spec.phases())
    if spec.strategy is Strategy.CANARY:
        return f"canary {phases}, bake {spec.baking_seconds:g} s{alarms}"
    return f"linear {phases}, every {spec.interval_seconds:g} s{alarms}"


@dataclass(frozen=True)
class Listed:
    """A row of the endpoints list."""

    endpoint: Endpoint
    variants: list[VariantShare]
    shadows: list[Shadow]
    capture: bool
    capture_percent: float
    recent_requests: int | None


def _shadow_names(endpoint: Endpoint) -> set[str]:
    return {s.name for s in shadows(endpoint)}


def _listed(endpoints: Endpoints, endpoint: Endpoint, since: datetime) -> Listed:
    spec = current_spec(endpoint)
    try:
        stats = endpoints.stats(endpoint.name, since=since)
    except NotFound:  # deleted since it was listed
        recent = None
    else:
        mirrored = _shadow_names(endpoint)
        recent = sum(v.requests for k, v in stats.variants.items() if k not in mirrored)
    return Listed(
        endpoint,
        variant_shares(endpoint),
        shadows(endpoint),
        bool(spec and spec.data_capture.enabled),
        spec.data_capture.sampling_percent if spec else 0.0,
        recent,
    )


# -- live traffic --------------------------------------------------------------------


def requests_per_second(
    windows: Sequence[TrafficWindow], first: datetime, last: datetime
) -> list[Point]:
    """Requests per second from ``first`` to ``last``: a window no gateway counted anything
    in served nothing, so the line must drop to 0 there rather than join its neighbours.
    Only the empty windows that bound a stretch of traffic (and the span's ends) get a 0
    point: the line between two zeros is flat anyway, and the region stays small."""
    step = timedelta(seconds=WINDOW_SECONDS)
    by_start = {w.window_start: w.requests for w in windows}
    points: list[Point] = []
    moment = first
    while moment <= last:
        counted = by_start.get(moment)
        if counted is not None:
            points.append((moment, counted / WINDOW_SECONDS))
        elif moment in (first, last) or moment - step in by_start or moment + step in by_start:
            points.append((moment, 0.0))
        moment += step
    return points


def live_charts(series: dict[str, list[TrafficWindow]], now: datetime) -> dict[str, Markup]:
    """Requests/s, error rate and latency p50 / p99 over the live span, a line per variant."""
    first = window_start((now - LIVE_SPAN).timestamp())
    last = window_start(now.timestamp())
    rate = {name: requests_per_second(windows, first, last) for name, windows in series.items()}
    errors: dict[str, list[Point]] = {
        name: [(w.window_start, 100 * w.errors / w.requests) for w in windows if w.requests]
        for name, windows in series.items()
    }
    p50: dict[str, list[Point]] = {
        name: [(w.window_start, w.p50_ms) for w in windows if w.p50_ms is not None]
        for name, windows in series.items()
    }
    p99: dict[str, list[Point]] = {
        name: [(w.window_start, w.p99_ms) for w in windows if w.p99_ms is not None]
        for name, windows in series.items()
    }
    empty = "no traffic in the last 15 minutes"
    return {
        "requests": line_chart("Requests per second", rate, y_label="req/s", empty=empty),
        "errors": line_chart("Error rate", errors, y_label="% of requests", empty=empty),
        "p50": line_chart("Latency p50", p50, y_label="ms", empty=empty),
        "p99": line_chart("Latency p99", p99, y_label="ms", empty=empty),
    }


def _live(endpoints: Endpoints, name: str) -> dict[str, Any]:
    """What the live region shows: the charts and the span's totals per variant."""
    now = datetime.now(UTC)
    since = now - LIVE_SPAN
    series = endpoints.series(name, since=since)
    totals = endpoints.stats(name, since=since)
    return {
        "name": name,
        "charts": live_charts(series, now),
        "totals": totals.variants,
        "updated": now,
    }


# -- pages ---------------------------------------------------------------------------


@router.get("/endpoints")
def endpoints_list(request: Request) -> Response:
    who = viewer(request)
    endpoints = _endpoints(request)
    page = paginate(list(endpoints.list()), request)
    since = datetime.now(UTC) - RECENT
    rows = [_listed(endpoints, e, since) for e in page.items]

    def page_link(number: int) -> str:
        return here(request, "/endpoints", page=number)

    return render(
        request,
        "endpoints_list.html",
        title="Endpoints",
        page=page,
        rows=rows,
        page_link=page_link,
        create_command=_create_command(who.workspace),
    )


@router.get("/endpoints/{name}")
def endpoint_detail(request: Request, name: str) -> Response:
    who = viewer(request)
    services = services_of(request).in_workspace(who.workspace)
    endpoints = services.endpoints
    endpoint = endpoints.describe(name)
    history = list(reversed(endpoints.history(name)))
    page = paginate(history, request)
    spec = current_spec(endpoint)
    target = endpoint.target
    phases = target.spec.deployment.phases() if target else []
    may_roll_back = who.may(Role.DEPLOYER) and endpoint.status in UPDATABLE

    def page_link(number: int) -> str:
        return here(request, f"/endpoints/{name}", page=number)

    def rollback_to(config: Deployment) -> bool:
        return (
            may_roll_back and config.outcome in SERVED and config.version != endpoint.active_version
        )

    return render(
        request,
        "endpoints_detail.html",
        title=f"Endpoint {name}",
        endpoint=endpoint,
        spec=spec,
        variants=variant_shares(endpoint),
        shadows=shadows(endpoint),
        phases=phases,
        page=page,
        page_link=page_link,
        rollback_to=rollback_to,
        strategy=strategy,
        may_deploy=who.may(Role.DEPLOYER),
        capture_location=services.artifacts.uri(
            capture_folder(scoped_name(who.workspace, endpoint.name))
        ),
        live_url=here(request, f"/endpoints/{name}/live"),
        live_every=LIVE_EVERY_MS,
        live=_live(endpoints, name),
        rollback_url=here(request, f"/endpoints/{name}/rollback"),
    )


@router.get("/endpoints/{name}/live")
def endpoint_live(request: Request, name: str) -> Response:
    """The live region of an endpoint's page: its charts and totals, re-fetched every few
    seconds by the page's script."""
    return render(
        request, "endpoints_live.html", title=f"Endpoint {name}", **_live(_endpoints(request), name)
    )


def _version(raw: str | None) -> int | None:
    """The form's ``to_version``: a config version, or empty for the one before."""
    text = (raw or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or not (
        1 <= int(text) <= MAX_VERSION
    ):
        raise InvalidInput(
            "to_version must be a config version (a whole number from 1)", field="to_version"
        )
    return int(text)


@router.post("/endpoints/{name}/rollback")
async def endpoint_rollback(request: Request, name: str) -> Response:
    """Deploy an earlier config again, all at once, as a new config version: the REST
    API's rollback (a deployer's change)."""
    who, fields = await action(request, Role.DEPLOYER)
    to_version = _version(fields.get("to_version"))
    rollback = partial(_endpoints(request).rollback, name, to_version=to_version, actor=who.name)
    endpoint: Endpoint = await anyio.to_thread.run_sync(rollback)
    again = endpoint.latest.rollback_of if endpoint.latest else to_version
    message = f"config {endpoint.target_version} deploys config {again} again"
    return done(request, here(request, f"/endpoints/{name}"), message)
