"""Feature views over REST: definitions, their versions.

``PUT /feature-views/{name}`` stores a definition as the view's next version when it
changed (the same definition again answers the current version, writing nothing), after
checking every reference and declared type; a view is read at its latest version or at
the version a model was trained on. ``POST /feature-views/{name}/training-set`` computes
a view offline for entity rows sent as an Arrow IPC stream and answers as ``POST
/training-sets`` does (the rows as a stream, the definition in a header): the remote
client's training set is the embedded one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from slipway.api.arrow import TABLE_BODY, TRAINING_SET_ANSWER, arrow_body, training_set_answer
from slipway.api.auth import READ_ONLY, Principal, authorize, needs, services_of, workspace_of
from slipway.api.bodies import named
from slipway.api.code import confine_feature_view
from slipway.core.arrowipc import from_ipc
from slipway.core.resource import Listing
from slipway.features.views.resources import FeatureView, ViewOnlineRequest, ViewRows
from slipway.features.views.service import FeatureViews
from slipway.features.views.spec import FeatureViewSpec
from slipway.security.tokens import Role

_caller = authorize(scoped=True)
router = APIRouter(prefix="/feature-views", tags=["features"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


class FeatureViewBody(FeatureViewSpec):
    """A view's definition; ``name`` may be left out (the path's)."""

    name: str | None = None  # type: ignore[assignment]


def views(request: Request) -> FeatureViews:
    """The feature views of the request's workspace."""
    return services_of(request).feature_views.in_workspace(workspace_of(request))


@router.get("", response_model=list[FeatureView])
def list_views(request: Request) -> Listing[FeatureView]:
    """The latest version of every view."""
    return views(request).list()


@router.put("/{name}", response_model=FeatureView)
def apply_view(name: str, body: FeatureViewBody, request: Request, caller: Caller) -> FeatureView:
    """Define the view, or store a changed definition as its next version. A Python
    transformation's function must come from a module the server allows
    (``code.allowed_modules``): the gateway runs it."""
    spec = FeatureViewSpec.model_validate(named(body, name, "feature view"))
    confine_feature_view(services_of(request).settings, spec)
    return views(request).apply(spec, actor=caller.name, confined=True)


@router.get("/{name}", response_model=FeatureView)
def describe_view(
    name: str, request: Request, version: Annotated[int | None, Query(ge=1, le=2**31)] = None
) -> FeatureView:
    """The view's latest version, or ``version``."""
    return views(request).get(name, version)


@router.get("/{name}/versions", response_model=list[FeatureView])
def view_versions(name: str, request: Request) -> Listing[FeatureView]:
    return views(request).versions(name)


@router.post(
    "/{name}/online", response_model=ViewRows, openapi_extra={**READ_ONLY, **needs(Role.VIEWER)}
)
def online_view(name: str, body: ViewOnlineRequest, request: Request) -> ViewRows:
    """The view's columns for each entity row, computed from the online store as the
    gateway serves them: stored features, windows ending at ``at`` (now by default), and
    the row-level transformations over the rows' request fields."""
    view = views(request).get(name, body.version)
    rows = views(request).get_online(name, body.entity_rows, version=view.version, at=body.at)
    return ViewRows(view=name, version=view.version, rows=rows)


@router.post(
    "/{name}/training-set",
    openapi_extra=TABLE_BODY | READ_ONLY | needs(Role.VIEWER),
    response_class=Response,
    responses=TRAINING_SET_ANSWER,
)
def training_set(
    name: str,
    request: Request,
    body: Annotated[bytes, Depends(arrow_body)],
    version: Annotated[int | None, Query(ge=1, le=2**31)] = None,
    timestamp_column: str = "event_timestamp",
    as_known_at: bool = False,
) -> Response:
    """The view's columns for each entity row of the body (keys, the timestamp, the
    request fields) as of the row's timestamp: ``FeatureViews.training_set`` in process.
    A read, as ``POST /training-sets`` is: a viewer may build one."""
    built = views(request).training_set(
        name,
        from_ipc(body, field="entities"),
        version=version,
        timestamp_column=timestamp_column,
        as_known_at=as_known_at,
    )
    return training_set_answer(built)


@router.delete("/{name}", status_code=204)
def delete_view(name: str, request: Request, caller: Caller) -> None:
    """Delete every version of the view."""
    views(request).delete(name, actor=caller.name)
