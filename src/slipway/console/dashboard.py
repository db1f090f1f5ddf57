"""The model dashboard: one row per registered model with what serves it and what watches
it — SageMaker's Model Dashboard, the page an on-call person opens first.

Built from a handful of list reads (models, endpoints, batch jobs, monitors, alerts), each
one query or a few whatever the number of models, then joined here in memory: the page's
cost must not grow with a query per model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from slipway.batch.resources import BatchJob
from slipway.core.events import Event
from slipway.core.workspace import unscoped_resource
from slipway.events.resources import Alert
from slipway.monitoring.resources import Monitor
from slipway.registry.resources import RegisteredModel
from slipway.services import Services
from slipway.serving.resources import Endpoint

RECENT_EVENTS = 20
RECENT_ALERTS = 20


@dataclass(frozen=True)
class Serving:
    """An endpoint serving a model: which variant, which version, what share of traffic."""

    endpoint: str
    variant: str
    version: int | None
    share: float
    shadow: bool
    status: str


@dataclass
class ModelRow:
    model: RegisteredModel
    serving: list[Serving] = field(default_factory=list)
    last_batch: BatchJob | None = None
    monitors: list[Monitor] = field(default_factory=list)
    alerts: int = 0

    @property
    def deployed(self) -> list[int]:
        return sorted({s.version for s in self.serving if s.version is not None})

    @property
    def failing_monitors(self) -> int:
        return sum(1 for m in self.monitors if m.last_status not in (None, "ok", "completed"))


@dataclass
class Dashboard:
    rows: list[ModelRow]
    endpoints: int
    feature_groups: int
    pipelines: int
    monitors: int
    alerts: list[Alert]
    events: list[Event]


def serving_of(endpoints: Iterable[Endpoint]) -> dict[str, list[Serving]]:
    """Per model name, the variants that serve it now (the active config)."""
    found: dict[str, list[Serving]] = {}
    for endpoint in endpoints:
        deployment = endpoint.active or endpoint.target
        if deployment is None:
            continue
        spec = deployment.spec
        for variant in spec.variants:
            found.setdefault(variant.model_name, []).append(
                Serving(
                    endpoint.name,
                    variant.name,
                    variant.version,
                    endpoint.traffic.get(variant.name, 0.0),
                    False,
                    str(endpoint.status),
                )
            )
        for shadow in spec.shadow_variants:
            found.setdefault(shadow.model_name, []).append(
                Serving(
                    endpoint.name,
                    shadow.name,
                    shadow.version,
                    shadow.sampling_percent / 100,
                    True,
                    str(endpoint.status),
                )
            )
    return found


def concerns(alert: Alert, model: str, endpoints: set[str], monitors: set[str]) -> bool:
    """Whether an alert's resource is the model (a version of it), one of the endpoints
    serving it, or one of the monitors watching them: whole path segments, never a
    substring (an endpoint ``a`` is not every resource with an ``a`` in it)."""
    kind, _, rest = unscoped_resource(alert.resource)[1].partition("/")
    name = rest.split("/", 1)[0]
    return (
        (kind == "model" and name == model)
        or (kind == "endpoint" and name in endpoints)
        or (kind == "monitor" and name in monitors)
    )


def dashboard(services: Services) -> Dashboard:
    """The dashboard of ``services``' workspace."""
    models = list(services.registry.models())
    endpoints = list(services.endpoints.list())
    by_model = serving_of(endpoints)
    monitors = list(services.monitoring.list())
    monitors_by_endpoint: dict[str, list[Monitor]] = {}
    for monitor in monitors:
        monitors_by_endpoint.setdefault(monitor.endpoint, []).append(monitor)
    last_batch: dict[str, BatchJob] = {}
    for job in services.batch.list(limit=200):
        known = last_batch.get(job.model_name)
        if known is None or _created(job) > _created(known):
            last_batch[job.model_name] = job
    alerts = list(services.alerts.fired(limit=RECENT_ALERTS))
    rows = []
    for model in models:
        serving = by_model.get(model.name, [])
        watched = {s.endpoint for s in serving}
        row = ModelRow(
            model,
            serving,
            last_batch.get(model.name),
            [m for e in sorted(watched) for m in monitors_by_endpoint.get(e, [])],
        )
        watching = {m.name for m in row.monitors}
        row.alerts = sum(1 for a in alerts if concerns(a, model.name, watched, watching))
        rows.append(row)
    events = services.events.recent(RECENT_EVENTS, workspace=services.registry.workspace)
    return Dashboard(
        rows=rows,
        endpoints=len(endpoints),
        feature_groups=len(services.features.list_groups()),
        pipelines=len(services.pipelines.pipelines()),
        monitors=len(monitors),
        alerts=alerts,
        events=events,
    )


def _created(job: BatchJob) -> datetime:
    created: datetime = job.created_at
    return created
