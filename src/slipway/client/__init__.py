"""The remote Python client: a shared Slipway's control plane, used like the embedded
platform.

    import slipway
    client = slipway.Client("https://slipway.example.com", token="...")
    built = client.features.training_set(entities, ["weather:*", "planes:seats"])

:func:`connect` returns the remote client when ``SLIPWAY_URL`` is set (with
``SLIPWAY_TOKEN``), and the embedded platform otherwise, so the same code runs on a laptop
and against a server. Each capability is an attribute with the embedded service's
methods, arguments and return types; errors are the same
:class:`~slipway.core.errors.SlipwayError` subclasses with the same messages.
"""

from __future__ import annotations

import os
from typing import Any

from slipway.client.alerts import RemoteAlerts
from slipway.client.applied import RemoteOwnership
from slipway.client.audit import RemoteAudit
from slipway.client.batch import RemoteBatch
from slipway.client.code import RemoteCode
from slipway.client.endpoints import RemoteEndpoints
from slipway.client.feature_views import RemoteFeatureViews
from slipway.client.features import RemoteFeatureStore
from slipway.client.jobs import RemoteTraining, RemoteTuning
from slipway.client.monitoring import RemoteBaselines, RemoteMonitoring
from slipway.client.pipelines import RemotePipelines, RemoteSchedules
from slipway.client.registry import RemoteRegistry
from slipway.client.tokens import RemoteTokens
from slipway.client.transport import Transport
from slipway.client.triggers import RemoteTriggers
from slipway.client.workspaces import RemoteWorkspaces
from slipway.tracking.resources import TrackingServer


class Client:
    """A control plane at ``url`` (``http(s)://host:port``), as ``token``'s holder."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        workspace: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        """``workspace``: the one every call acts in (``SLIPWAY_WORKSPACE`` with
        :func:`connect`); None, the server's default workspace."""
        self.transport = Transport(
            url, token=token, workspace=workspace, timeout=timeout, retries=retries
        )
        self.workspaces = RemoteWorkspaces(self.transport)
        self.code = RemoteCode(self.transport)
        self.features = RemoteFeatureStore(self.transport)
        self.feature_views = RemoteFeatureViews(self.transport)
        self.tokens = RemoteTokens(self.transport)
        self.audit = RemoteAudit(self.transport)
        self.endpoints = RemoteEndpoints(self.transport)
        self.batch = RemoteBatch(self.transport)
        self.monitoring = RemoteMonitoring(self.transport)
        self.baselines = RemoteBaselines(self.transport)
        self.alerts = RemoteAlerts(self.transport)
        self.pipelines = RemotePipelines(self.transport, self.code)
        self.schedules = RemoteSchedules(self.transport)
        self.triggers = RemoteTriggers(self.transport)
        self.training = RemoteTraining(self.transport, self.code)
        self.tuning = RemoteTuning(self.transport, self.code)
        self.registry = RemoteRegistry(self.transport)
        self.ownership = RemoteOwnership(self.transport)

    @property
    def url(self) -> str:
        return self.transport.url

    def __repr__(self) -> str:
        return f"slipway.Client({self.url!r})"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI to log runs and models to, as the server tells it
        (``Services.tracking_uri`` in process): ``mlflow.MlflowClient(tracking_uri=...)``."""
        answer = self.transport.request("GET", "/tracking").json()
        return TrackingServer.model_validate(answer).uri

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def connect(
    url: str | None = None, *, token: str | None = None, workspace: str | None = None
) -> Any:
    """The platform to use: a :class:`Client` of ``url`` (or ``SLIPWAY_URL``) when one is
    given, in ``workspace`` (or ``SLIPWAY_WORKSPACE``), else the embedded platform opened
    from settings (``SLIPWAY_*``), as that workspace sees it (an unknown one: NotFound)."""
    url = url or os.environ.get("SLIPWAY_URL")
    workspace = workspace or os.environ.get("SLIPWAY_WORKSPACE") or None
    if url:
        return Client(url, token=token or os.environ.get("SLIPWAY_TOKEN"), workspace=workspace)
    from slipway.core.errors import NotFound
    from slipway.core.settings import load_settings
    from slipway.core.workspace import DEFAULT_WORKSPACE, validate_workspace
    from slipway.services import Services

    name = validate_workspace(workspace or DEFAULT_WORKSPACE)
    services = Services.open(load_settings())
    if not services.workspaces.exists(name):
        services.close()
        raise NotFound(f"workspace {name!r} not found", details={"workspace": name})
    return services.in_workspace(name)


__all__ = ["Client", "connect"]
