"""Tracking over REST: where a remote user logs runs and models (the platform's MLflow
tracking server), so ``Client.tracking_uri`` needs no configuration of its own."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from slipway.api.auth import authorize, services_of
from slipway.tracking.config import public_tracking_uri
from slipway.tracking.resources import TrackingServer

router = APIRouter(prefix="/tracking", tags=["tracking"], dependencies=[Depends(authorize())])


@router.get("")
def tracking_server(request: Request) -> TrackingServer:
    """The MLflow tracking URI to log to, as the caller can reach it: on a server listening
    on every interface, the host the caller reached the control plane at."""
    settings = services_of(request).settings
    return TrackingServer(uri=public_tracking_uri(settings, reached_at=request.url.hostname))
