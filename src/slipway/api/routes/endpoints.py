"""Serving endpoints over REST: create, update, roll back, describe, history, traffic
stats, A/B test reports and delete.

Changes are asynchronous: a create, update or rollback stores a new config and returns
at once (status Creating or Updating); gateways load it and the deployment controller
moves the traffic. Poll ``GET /endpoints/{name}`` to follow it. Bodies are endpoint specs
(:class:`~slipway.serving.spec.EndpointSpec`), so a bad one is a 400 naming the field and
stores nothing; answers are the resources of :mod:`slipway.serving.resources`.
Invocations go to the gateway (each endpoint's ``url``), not here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, BeforeValidator

from slipway.api.auth import Principal, authorize, services_of, workspace_of
from slipway.api.routes import MAX_ID, Int64
from slipway.core.workspace import scoped_name
from slipway.evaluation import ab
from slipway.monitoring.resources import ABReport
from slipway.security.resources import Role
from slipway.serving.invoke import gateway_url, invocation_url
from slipway.serving.resources import (
    Deployment,
    Endpoint,
    EndpointStats,
    EndpointUpdate,
    RollbackRequest,
)
from slipway.serving.service import Endpoints
from slipway.serving.spec import EndpointSpec
from slipway.serving.states import EndpointStatus

# Endpoints put models in front of traffic: their changes are the deployer's.
_caller = authorize(writes=Role.DEPLOYER, scoped=True)
router = APIRouter(prefix="/endpoints", tags=["endpoints"], dependencies=[Depends(_caller)])
Caller = Annotated[Principal, Depends(_caller)]


def endpoints(request: Request) -> Endpoints:
    """The endpoints of the request's workspace."""
    return services_of(request).endpoints.in_workspace(workspace_of(request))


def _iso_only(value: object) -> object:
    """A time in a query is ISO 8601 text, as the document says: pydantic would also take
    a number as Unix seconds, which the document does not offer."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    elif isinstance(value, datetime):
        return value
    raise ValueError("give an ISO 8601 time with a time zone, e.g. 2024-01-01T00:00:00Z")


# A zoned ISO 8601 time given as a query parameter.
QueryTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]


class Deleting(BaseModel):
    name: str
    status: EndpointStatus


def _reached(endpoint: Endpoint, request: Request) -> Endpoint:
    """``endpoint`` with its invocation URL as this caller reaches the gateway: on a
    gateway listening on every interface, at the host the caller reached us at."""
    settings = services_of(request).settings
    gateway = gateway_url(
        settings.serving, reached_at=request.url.hostname, scheme=settings.tls.scheme
    )
    url = invocation_url(gateway, scoped_name(endpoint.workspace, endpoint.name))
    return endpoint.model_copy(update={"url": url})


@router.get("")
def list_endpoints(request: Request) -> list[Endpoint]:
    """Every endpoint, by name."""
    return [_reached(e, request) for e in endpoints(request).list()]


@router.post("", status_code=201)
def create_endpoint(body: EndpointSpec, request: Request, caller: Caller) -> Endpoint:
    """Store the spec as config 1 and start creating the endpoint (status Creating)."""
    return _reached(endpoints(request).create(body, actor=caller.name), request)


@router.get("/{name}")
def describe_endpoint(name: str, request: Request) -> Endpoint:
    return _reached(endpoints(request).describe(name), request)


@router.put("/{name}")
def update_endpoint(name: str, body: EndpointUpdate, request: Request, caller: Caller) -> Endpoint:
    """Roll out a new spec with its deployment strategy; the body may leave out ``name``
    but not contradict the path."""
    updated = endpoints(request).update(name, body.for_endpoint(name), actor=caller.name)
    return _reached(updated, request)


@router.delete("/{name}", status_code=202, response_model=Deleting)
def delete_endpoint(name: str, request: Request, caller: Caller) -> Deleting:
    """Start deleting: the endpoint is gone once no gateway serves it any more."""
    endpoints(request).delete(name, actor=caller.name)
    return Deleting(name=name, status=EndpointStatus.DELETING)


@router.get("/{name}/history")
def endpoint_history(name: str, request: Request) -> list[Deployment]:
    """Every config ever stored, oldest first, with its outcome."""
    return endpoints(request).history(name)


@router.post("/{name}/rollback")
def rollback_endpoint(
    name: str, request: Request, caller: Caller, body: RollbackRequest | None = None
) -> Endpoint:
    """Deploy an earlier config again, all at once, as a new config version."""
    to_version = body.to_version if body is not None else None
    rolled = endpoints(request).rollback(name, to_version=to_version, actor=caller.name)
    return _reached(rolled, request)


@router.get("/{name}/stats", response_model=EndpointStats)
def endpoint_stats(
    name: str,
    request: Request,
    since: Annotated[
        QueryTime | None,
        Query(description="ISO 8601 with a time zone; default: every window kept (a week)"),
    ] = None,
    config_version: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="only this config's traffic")
    ] = None,
) -> EndpointStats:
    """Requests, errors, latency percentiles and prediction mean per variant, counted in
    5-second windows (the one holding ``since`` is included whole)."""
    return endpoints(request).stats(name, since=since, config_version=config_version)


@router.get("/{name}/ab-test", response_model=ABReport)
def endpoint_ab_test(
    name: str,
    request: Request,
    since: Annotated[QueryTime, Query(description="start of the window (ISO 8601, zoned)")],
    until: Annotated[QueryTime | None, Query(description="end; default now")] = None,
    metric: Annotated[
        str, Query(max_length=32, description="roc_auc, log_loss, accuracy, rmse or mae")
    ] = "roc_auc",
    min_difference: Annotated[
        float, Query(ge=0, le=1e9, description="the smallest difference worth acting on")
    ] = 0.0,
    min_samples: Annotated[int, Query(ge=1, le=10**9)] = 100,
    confidence: Annotated[float, Query(ge=0.5, lt=1)] = 0.95,
    resamples: Annotated[int, Query(ge=1, le=ab.MAX_RESAMPLES)] = 1000,
    seed: Annotated[int, Query(ge=0, le=2**32 - 1)] = 0,
    reference: Annotated[
        str | None, Query(max_length=63, description="default: the heaviest variant")
    ] = None,
) -> ABReport:
    """Per-variant model quality from ground truth (captured predictions joined with the
    labels sent to ``/endpoints/{name}/ground-truth``), each variant against the reference
    with a seeded bootstrap interval, and the rule's verdict: winner, loser or no
    difference yet (see :mod:`slipway.evaluation.ab`)."""
    return (
        services_of(request)
        .monitoring.in_workspace(workspace_of(request))
        .ab_test(
            name,
            since=since,
            until=until,
            metric=metric,
            min_difference=min_difference,
            min_samples=min_samples,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
            reference=reference,
        )
    )


@router.get("/{name}/configs/{version}", response_model=EndpointSpec)
def endpoint_config(name: str, version: Int64, request: Request) -> EndpointSpec:
    """The spec stored as config ``version``, model references pinned to versions."""
    return endpoints(request).config(name, version)
