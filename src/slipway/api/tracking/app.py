"""The tracking server's ASGI app: MLflow's (with Slipway's fast path) behind the gate.

A uvicorn factory, so that each server process opens its own platform connections.
``python -m slipway.api.tracking`` runs it; :func:`slipway.tracking.config.server_argv`
names that command, so the supervisor, ``slipway up`` and ``slipway mlflow`` all run the
gated server: there is no way to start MLflow's server through Slipway without it.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from slipway.api.hosts import HostCheck, accepted_hosts
from slipway.api.tracking.gate import TrackingGate
from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.tracking.server import create_app as create_mlflow_app

# The gate's token and audit lookups and the registry calls it answers need few
# connections; MLflow's own store keeps its pool.
POOL_SIZE = 4


def create_app() -> ASGIApp:
    """MLflow's app in this process, behind :class:`TrackingGate`."""
    inner = create_mlflow_app()
    settings = load_settings()
    services = Services.open(settings, migrate=False, pool_size=POOL_SIZE)
    # Outermost, as on the control plane: with auth off only loopback names are answered
    # (DNS rebinding), also for the requests the gate answers without MLflow.
    return HostCheck(
        TrackingGate(inner, services=services), accepted=accepted_hosts(settings.server)
    )
