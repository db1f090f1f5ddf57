"""Feature groups in the console, as a Feature Store user expects to browse them: a
searchable list with each group's keys, stores, record count and freshness; and a group's
page with its schema, the profile of its latest ingestion (a histogram per numeric
feature) and its ingestion history with the Delta version each one wrote.

Read-only: groups are defined and fed from code, the CLI or the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from slipway.console.charts import histograms
from slipway.console.paging import PAGE_SIZE, Page, page_number, paginate
from slipway.console.render import render
from slipway.console.routing import ConsoleRoute, here
from slipway.console.session import services_of, viewer
from slipway.core.settings import mask_url
from slipway.features.profile import FeatureProfile
from slipway.features.resources import StoredGroup
from slipway.features.store import FeatureStore

router = APIRouter(route_class=ConsoleRoute)

# The CLI command that creates a group (from a YAML definition).
CREATE_COMMAND = "slipway features create -f feature_group.yaml"
# Ingestion errors are shown up to this length in the history (the whole text on hover).
ERROR_EXCERPT = 200


def _store(request: Request) -> FeatureStore:
    return services_of(request).in_workspace(viewer(request).workspace).features


def _matches(group: StoredGroup, q: str) -> bool:
    """A case-insensitive search of the group's name and description."""
    needle = q.strip().lower()
    return (
        not needle or needle in group.spec.name.lower() or needle in group.spec.description.lower()
    )


def duration(value: timedelta | None) -> str:
    """A TTL as a person says it: ``7 d``, ``36 h``, ``90 min``, ``45 s`` (``—`` for none)."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@router.get("/features")
def feature_groups(request: Request, q: str = "") -> Response:
    store = _store(request)
    groups = store.list_groups()
    found = [g for g in groups if _matches(g, q)]
    page = paginate(found, request)
    return render(
        request,
        "features_list.html",
        title="Feature groups",
        q=q,
        any_group=bool(groups),
        page=page,
        summaries=store.summaries(page.items),
        page_link=lambda number: here(request, "/features", q=q or None, page=number),
        create_command=CREATE_COMMAND,
    )


@dataclass(frozen=True)
class _Shown:
    """A feature of the profile as the page shows it: its figures and its chart."""

    profile: FeatureProfile
    chart: Markup | None


def _chart(feature: FeatureProfile, label: str) -> Markup | None:
    title = f"{feature.name}: distribution in {label}"
    if feature.histogram is not None:
        return histograms(title, feature.histogram.edges, {label: feature.histogram.counts})
    if feature.top:
        return histograms(
            title,
            None,
            {label: [count for _, count in feature.top]},
            categories=[value for value, _ in feature.top],
        )
    return None


@router.get("/features/{name}")
def feature_group(
    request: Request,
    name: str,
    ingest: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """The group's page; ``?ingest=ID`` profiles that ingestion instead of the latest."""
    store = _store(request)
    stored = store.describe(name)
    number = page_number(request)
    ingests, total = store.ingest_history(name, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    history = Page(ingests, number, total, PAGE_SIZE)
    profile = store.ingest_profile(name, ingest)
    label = f"ingestion {profile.ingest.id}" if profile else ""
    shown = [_Shown(f, _chart(f, label)) for f in profile.features] if profile else []
    summary = store.summaries([stored])[name]
    return render(
        request,
        "features_group.html",
        title=f"Feature group {name}",
        group=stored,
        spec=stored.spec,
        ttl=duration(stored.spec.ttl),
        activity=summary.activity,
        offline_rows=store.offline_rows(name) if stored.spec.offline else None,
        profile=profile,
        latest=ingest is None,
        shown=shown,
        history=history,
        actors=store.ingest_actors(name, ingests),
        sources={i.id: mask_url(i.source) for i in ingests},
        streamed=any(i.kind == "stream" for i in ingests),
        error_excerpt=ERROR_EXCERPT,
        page_link=lambda page: here(request, f"/features/{name}", ingest=ingest, page=page),
        profile_link=lambda ingest_id: here(request, f"/features/{name}", ingest=ingest_id),
    )
