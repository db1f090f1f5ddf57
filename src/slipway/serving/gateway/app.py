"""The gateway's ASGI application: SageMaker invocations (gateway/sagemaker.py), Open
Inference Protocol V2 (gateway/oip.py), explanations (``/endpoints/{name}/explain``,
gateway/explain.py), online features (gateway/online.py), ``/ping``, ``/metrics`` and its
OpenAPI document (``/openapi.json``, gateway/openapi.py). This module only wires one
worker's parts together and dispatches a request by its path; routing and admission
(gateway/routing.py), serving a request (gateway/inference.py), capture and shadow traffic
(gateway/shadow.py, gateway/capture.py) and the worker's threads (gateway/lifecycle.py)
are each a module of their own.

It is a bare ASGI callable rather than a framework app: the per-request overhead is the
product here (MLflow's scoring server spends ~30 ms of its ~32 ms per one-row request
outside the model), so routing is a few string tests and JSON goes through orjson.

What a response holds follows the served version's ``output`` (see
:mod:`slipway.registry.outputs`; ``classes`` are in the order of the probabilities):

============================  ==============================  ==============================
protocol                      ``probabilities``               ``both``
============================  ==============================  ==============================
invocations (MLflow's         ``{"predictions": [[p0, p1],    ``{"predictions": [{"label": c,
``predictions``, SageMaker)   …], "classes": [c0, c1]}``      "probabilities": [p0, p1]}, …],
                                                              "classes": [c0, c1]}``
Open Inference Protocol V2    output ``probabilities``, FP64, outputs ``label`` [rows] and
                              shape [rows, classes], with     ``probabilities`` as on the
                              ``parameters.classes`` (JSON    left
                              text)
============================  ==============================  ==============================

A ``label`` version answers as it always did: ``{"predictions": [...]}`` and the OIP output
``predict``. The model metadata (``GET /v2/models/{name}``) lists the outputs likewise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from slipway.core.artifacts import ArtifactStore
from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput, ModelError, NotFound, SlipwayError
from slipway.core.settings import Settings
from slipway.core.unavailable import as_unavailable
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_name, validate_workspace
from slipway.features.online.base import OnlineStore
from slipway.features.store import FeatureStore
from slipway.registry.service import Registry
from slipway.serving.gateway.access import GatewayAccess
from slipway.serving.gateway.asgi import (
    TEXT_HEADERS,
    Receive,
    Scope,
    Send,
    allow,
    error,
    respond,
)
from slipway.serving.gateway.capture import CaptureWriter
from slipway.serving.gateway.explain import Explain
from slipway.serving.gateway.inference import Inference
from slipway.serving.gateway.lifecycle import Lifecycle, gateway_id
from slipway.serving.gateway.metrics import Recorder
from slipway.serving.gateway.oip import OpenInference
from slipway.serving.gateway.online import OnlineFeatures
from slipway.serving.gateway.openapi import DOCUMENT_JSON as OPENAPI_JSON
from slipway.serving.gateway.routing import Router
from slipway.serving.gateway.runtime import GatewayState, VariantRuntime
from slipway.serving.gateway.sagemaker import SageMaker
from slipway.serving.gateway.shadow import Shadows

log = logging.getLogger("slipway.serving.gateway")

_PREFIX = "/workspaces/"


def workspace_route(path: str) -> tuple[str, str]:
    """(workspace, route) of a request path: ``/workspaces/<ws>/<route>`` is ``<ws>``'s,
    any other path the default workspace's. A malformed workspace name is a 404, as any
    path the gateway has no route for."""
    if not path.startswith(_PREFIX):
        return DEFAULT_WORKSPACE, path
    workspace, _, rest = path[len(_PREFIX) :].partition("/")
    try:
        validate_workspace(workspace)
    except InvalidInput:
        raise NotFound(f"no route for {path}") from None
    return workspace, "/" + rest


def endpoint_key(workspace: str, name: str) -> str:
    """The endpoint a route names in ``workspace``: its scoped name. A name holding a
    ``/`` is no endpoint (a workspace is named by the path's prefix, nowhere else)."""
    if not name or "/" in name:
        raise NotFound(f"endpoint {name!r} does not exist", details={"endpoint": name})
    return scoped_name(workspace, name)


class GatewayParts(Protocol):
    """What a gateway worker serves from, assembled once by the platform
    (``slipway.services.open_gateway``; :class:`~slipway.services.Services` has them all).
    The worker owns them: stopping it closes the database pool and the online store."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def artifacts(self) -> ArtifactStore: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def features(self) -> FeatureStore: ...
    @property
    def online_store(self) -> OnlineStore: ...


class Gateway:
    """One gateway worker: the ASGI callable over its parts, each doing one job —
    :class:`Router` (admission, variants, canary judging), :class:`Inference` (serving a
    request for any protocol), :class:`SageMaker` and :class:`OpenInference` (the two
    inference protocols), :class:`Shadows` (capture and shadow traffic after a request),
    :class:`Explain`, :class:`OnlineFeatures` and :class:`Lifecycle` (start, stop, the
    background threads)."""

    def __init__(self, parts: GatewayParts, *, gateway_id_: str | None = None) -> None:
        settings = parts.settings
        self.settings = settings
        self.limits = settings.serving
        self.id = gateway_id_ or gateway_id()
        self.db = parts.db
        self.artifacts = parts.artifacts
        self.registry = parts.registry
        self.online = parts.online_store
        self.features = parts.features
        self.state = GatewayState(self.db, self.registry, self.features, self.id)
        self.state.cold_start_observer = self._cold_start
        self.recorder = Recorder(self.db, self.id)
        self.capture = CaptureWriter(
            self.artifacts,
            self.id,
            capacity=self.limits.capture_buffer,
            on_written=self.recorder.captured,
        )
        self.router = Router(self.state, self.limits)
        self.shadows = Shadows(self.recorder, self.capture)
        self.inference = Inference(self.state, self.router, self.recorder, self.shadows.after)
        self.sagemaker = SageMaker(self.router, self.inference, self.limits)
        self.access = GatewayAccess(settings, self.db)
        self.lifecycle = Lifecycle(
            self.id,
            self.db,
            self.state,
            self.router,
            self.recorder,
            self.capture,
            self.online,
            self.access.denials,
        )
        self.oip = OpenInference(
            self.router, self.inference, self.limits, lambda: self.lifecycle.started
        )
        self.explain = Explain(self.router, self.state, self.limits, settings.explain)
        self.online_features = OnlineFeatures(self.features, self.limits)

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has finished (the worker serves its endpoints)."""
        return self.lifecycle.started

    def start(self) -> None:
        self.lifecycle.start()

    def stop(self) -> None:
        self.lifecycle.stop()

    def _cold_start(self, variant: VariantRuntime, ms: float) -> None:
        """Count a serverless model's load, on the endpoint whose config holds it."""
        endpoint = next(
            (
                ep.name
                for ep in self.state.endpoints.values()
                for config in (ep.active, ep.target)
                if config is not None and variant in config.variants + config.shadows
            ),
            None,
        )
        if endpoint is not None:
            counts = self.recorder.counters(endpoint, variant.config_version, variant.name)
            counts.cold_starts += 1
            counts.cold_start_ms_sum += ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifecycle.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            # /workspaces/<ws>/...: a workspace's endpoints, features and metrics.
            workspace, path = workspace_route(path)
            # Host, then token and grant (auth on): decided at once for a token verified
            # in the last seconds, awaited only when it must be read from the database.
            pending = self.access.check(scope, path, workspace)
            if pending is not None:
                await pending
            if path == "/ping" and method == "GET":
                await respond(send, 200, b'{"status":"ok"}')
            elif path.startswith("/endpoints/") and path.endswith("/invocations"):
                allow(method, "POST")
                name = path[len("/endpoints/") : -len("/invocations")]
                await self.sagemaker.invocations(
                    endpoint_key(workspace, name), scope, receive, send
                )
            elif path.startswith("/endpoints/") and path.endswith("/explain"):
                allow(method, "POST")
                name = endpoint_key(workspace, path[len("/endpoints/") : -len("/explain")])
                await respond(send, 200, *await self.explain(name, scope, receive))
            elif path == "/v2" or path.startswith("/v2/"):
                await self.oip.route(path, method, scope, receive, send, workspace)
            elif path == "/online-features":
                allow(method, "POST")
                await self.online_features(scope, receive, send, workspace)
            elif path == "/metrics" and method == "GET":
                await respond(send, 200, await self._metrics(workspace), TEXT_HEADERS)
            elif path == "/openapi.json" and method == "GET":
                await respond(send, 200, OPENAPI_JSON)
            else:
                raise NotFound(f"no route for {method} {path}")
        except SlipwayError as exc:
            await error(send, exc)
        except Exception as exc:  # never a hung or empty reply
            unavailable = as_unavailable(exc)  # a backend's driver error: 503, not 500
            if unavailable is not None:
                log.warning("gateway: %s on %s", unavailable.message, path)
                await error(send, unavailable)
                return
            log.exception("gateway: unexpected error on %s", path)
            await error(send, ModelError(f"internal error: {type(exc).__name__}"))

    async def _metrics(self, workspace: str) -> bytes:
        """Prometheus' text of ``workspace``'s endpoints and this worker's gauges,
        rendered in a thread (it reads the shared stats table)."""
        extra = {
            "slipway_gateway_in_flight": float(self.router.in_flight),
            "slipway_gateway_shed_total": float(self.router.shed),
            "slipway_gateway_refused_total": float(self.access.denials.refused),
            "slipway_gateway_refusals_not_logged_total": float(self.access.denials.dropped),
        }
        body = await asyncio.get_running_loop().run_in_executor(
            None, self.recorder.prometheus, extra, workspace
        )
        return body.encode()
