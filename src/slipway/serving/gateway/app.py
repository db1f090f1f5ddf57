"""The gateway's ASGI application: SageMaker invocations, Open Inference Protocol V2,
explanations (``/endpoints/{name}/explain``, gateway/explain.py), ``/ping``, ``/metrics``
and its OpenAPI document (``/openapi.json``, gateway/openapi.py).

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
import gc
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from slipway import __version__
from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import (
    BackendUnavailable,
    InvalidInput,
    ModelError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    SlipwayError,
    UnsupportedMediaType,
)
from slipway.core.events import EventLog
from slipway.core.jsondepth import json_depth_exceeds
from slipway.core.settings import Settings
from slipway.core.unavailable import as_unavailable
from slipway.features.offline.delta import DeltaOfflineStore
from slipway.features.online.factory import open_online_store
from slipway.features.repository import GroupRepository
from slipway.features.store import FeatureStore
from slipway.registry.models import Output
from slipway.registry.predict import Batch, LoadedModel
from slipway.registry.service import Registry
from slipway.security.audit import AuditLog
from slipway.serving.alarms import LATENCY_ALARMS, first_tripped, trip_reason
from slipway.serving.gateway.capture import CaptureWriter
from slipway.serving.gateway.explain import explain
from slipway.serving.gateway.inputs import (
    Frame,
    answer,
    attach_binary,
    check,
    invocation_type,
    numeric_summary,
    parse_csv,
    parse_json,
    parse_oip,
)
from slipway.serving.gateway.metrics import Recorder
from slipway.serving.gateway.oip import metadata, oip_outputs
from slipway.serving.gateway.openapi import DOCUMENT_JSON as OPENAPI_JSON
from slipway.serving.gateway.runtime import (
    POLL_SECONDS,
    ConfigRuntime,
    EndpointRuntime,
    GatewayState,
    VariantRuntime,
)
from slipway.serving.stats import Counters
from slipway.serving.tables import GatewayRow

log = logging.getLogger("slipway.serving.gateway")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Small batches on fast-path models predict inline: a thread hop costs more than they do.
INLINE_ROWS = 64
_INFERENCE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_JSON = [(b"content-type", b"application/json")]
_TEXT = [(b"content-type", b"text/plain; version=0.0.4")]


MAX_ENTITY_ROWS = 10_000  # per online-features request


def gateway_id() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:80]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Served:
    config: ConfigRuntime
    variant: VariantRuntime
    model: LoadedModel
    batch: Batch
    predictions: list[Any]
    inference_id: str
    labels: list[Any] | None = None  # a version returning both: the labels
    probabilities: np.ndarray | None = None  # a version returning probabilities


class Gateway:
    """One gateway worker: its endpoints, counters, capture buffer and background threads."""

    def __init__(self, settings: Settings, *, gateway_id_: str | None = None) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        self.settings = settings
        self.limits = settings.serving
        self.id = gateway_id_ or gateway_id()
        self.db = Database(settings.database_url, pool_size=4)
        events = EventLog(self.db)
        audit = AuditLog(self.db)
        self.artifacts = ArtifactStore(settings.artifact_root)
        self.registry = Registry(settings, self.db, self.artifacts, events, audit)
        self.online = open_online_store(settings.online_store_url)
        self.features = FeatureStore(
            GroupRepository(self.db, events),
            DeltaOfflineStore(f"{settings.artifact_root.rstrip('/')}/features"),
            self.online,
            events,
            audit,
        )
        self.state = GatewayState(self.db, self.registry, self.features, self.id)
        self.state.cold_start_observer = self._cold_start
        self.recorder = Recorder(self.db, self.id)
        self.capture = CaptureWriter(
            self.artifacts, self.id, capacity=self.limits.capture_buffer, on_written=self._written
        )
        self.in_flight = 0
        # Per endpoint with a max_concurrency: its requests being served in this worker.
        self.busy: dict[str, int] = {}
        self.shed = 0  # requests answered 429 by this worker (here and in gateway/http.py)
        self.started = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        now = utcnow()
        with self.db.write() as session:
            session.merge(
                GatewayRow(
                    gateway_id=self.id,
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                    refreshed_at=now,
                    in_flight=0,
                )
            )
        self.state.refresh()
        self._beat()
        # Everything loaded so far (libraries, models) lives as long as the worker: keep it
        # out of the garbage collector's full passes, which otherwise stall requests.
        gc.freeze()
        for target, name in ((self._watch, "gateway-watch"), (self._housekeep, "gateway-flush")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.started = True

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        try:
            self.capture.flush()
            self.recorder.flush()
            with self.db.write() as session:
                row = session.get(GatewayRow, self.id)
                if row is not None:
                    session.delete(row)
            self.state_forget_all()
        except Exception as exc:  # shutting down: say it in a line, not a traceback
            log.warning("gateway shutdown: final flush failed: %s", exc)
        self.online.close()
        self.db.dispose()

    def state_forget_all(self) -> None:
        for name in list(self.state.endpoints):
            self.state._forget(name)

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                if self.state.refresh():
                    gc.freeze()  # newly loaded models, too
            except BackendUnavailable as exc:  # serving goes on with what it holds
                log.warning("gateway: endpoints not refreshed: %s", exc.message)
            except Exception:
                log.exception("gateway: refreshing endpoints failed")

    def _housekeep(self) -> None:
        while not self._stop.wait(1.0):
            steps = (
                self.state.report_trips,
                self.capture.flush,
                self.recorder.flush,
                self._beat,
                self._unload,
            )
            for step in steps:
                try:
                    step()
                except BackendUnavailable as exc:  # tried again on the next round
                    log.warning("gateway housekeeping step %s: %s", step.__name__, exc.message)
                except Exception:
                    log.exception("gateway housekeeping step %s failed", step.__name__)

    def _beat(self) -> None:
        with self.db.write() as session:
            row = session.get(GatewayRow, self.id)
            if row is None:
                return
            row.heartbeat_at = utcnow()
            row.refreshed_at = self.state.refreshed_at
            row.in_flight = self.in_flight

    def _unload(self) -> None:
        for name in self.state.unload_idle():
            log.info("serverless: unloaded %s after its idle timeout", name)

    def _cold_start(self, variant: VariantRuntime, ms: float) -> None:
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

    def _written(self, endpoint: str, version: int, variant: str, rows: int) -> None:
        self.recorder.counters(endpoint, version, variant).captured += rows

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if path == "/ping" and method == "GET":
                await _respond(send, 200, b'{"status":"ok"}')
            elif path.startswith("/endpoints/") and path.endswith("/invocations"):
                _allow(method, "POST")
                await self._invocations(
                    path[len("/endpoints/") : -len("/invocations")], scope, receive, send
                )
            elif path.startswith("/endpoints/") and path.endswith("/explain"):
                _allow(method, "POST")
                name = path[len("/endpoints/") : -len("/explain")]
                await _respond(send, 200, *await explain(self, name, scope, receive))
            elif path == "/v2" or path.startswith("/v2/"):
                await self._oip(path, method, scope, receive, send)
            elif path == "/online-features":
                _allow(method, "POST")
                await self._online_features(scope, receive, send)
            elif path == "/metrics" and method == "GET":
                body = await asyncio.get_running_loop().run_in_executor(
                    None,
                    self.recorder.prometheus,
                    {
                        "slipway_gateway_in_flight": float(self.in_flight),
                        "slipway_gateway_shed_total": float(self.shed),
                    },
                )
                await _respond(send, 200, body.encode(), _TEXT)
            elif path == "/openapi.json" and method == "GET":
                await _respond(send, 200, OPENAPI_JSON)
            else:
                raise NotFound(f"no route for {method} {path}")
        except SlipwayError as exc:
            await _error(send, exc)
        except Exception as exc:  # never a hung or empty reply
            unavailable = as_unavailable(exc)  # a backend's driver error: 503, not 500
            if unavailable is not None:
                log.warning("gateway: %s on %s", unavailable.message, path)
                await _error(send, unavailable)
                return
            log.exception("gateway: unexpected error on %s", path)
            await _error(send, ModelError(f"internal error: {type(exc).__name__}"))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if not self.started:
                        await asyncio.get_running_loop().run_in_executor(None, self.start)
                    await send({"type": "lifespan.startup.complete"})
                except Exception as exc:
                    log.exception("gateway startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.limits.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _json(self, body: bytes) -> Any:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
        limit = self.limits.max_json_depth
        if json_depth_exceeds(body, limit):
            raise InvalidInput(f"the JSON nests deeper than {limit} levels", field="body")
        return value

    def _endpoint(self, name: str) -> EndpointRuntime:
        endpoint = self.state.endpoints.get(name)
        if endpoint is None:
            raise NotFound(f"endpoint {name!r} does not exist", details={"endpoint": name})
        return endpoint

    # -- online features ----------------------------------------------------------------

    async def _online_features(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The feature server on the data plane: ``{"feature_refs", "entity_rows",
        "full_feature_names"}`` → ``{"vectors": [{"values", "missing", "stale"}]}``, the
        same contract as the control plane's ``POST /api/v1/online-features``, served by
        the gateway's workers for other services that read features at request time."""
        body = self._json(await self._body(scope, receive))
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        unknown = set(body) - {"feature_refs", "entity_rows", "full_feature_names"}
        if unknown:
            raise InvalidInput(
                f"unknown field(s) {sorted(unknown)}", field=sorted(unknown)[0] or "body"
            )
        refs = body.get("feature_refs")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise InvalidInput(
                "feature_refs must be a non-empty list of group:feature", field="feature_refs"
            )
        rows = body.get("entity_rows")
        limit = MAX_ENTITY_ROWS
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise InvalidInput(
                "entity_rows must be a non-empty list of objects", field="entity_rows"
            )
        if len(rows) > limit:
            raise InvalidInput(f"at most {limit} entity rows per request", field="entity_rows")
        full = body.get("full_feature_names", False)
        if not isinstance(full, bool):
            raise InvalidInput(
                "full_feature_names must be true or false", field="full_feature_names"
            )
        vectors = self.features.get_online_features(refs, rows, full_feature_names=full)
        payload = {
            "vectors": [
                {"values": v.values, "missing": v.missing, "stale": v.stale} for v in vectors
            ]
        }
        await _respond(send, 200, orjson.dumps(payload))

    # -- SageMaker-style invocations -----------------------------------------------------

    async def _invocations(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = _headers(scope)
        endpoint = self._endpoint(name)
        ctype = invocation_type(headers)
        body = await self._body(scope, receive)

        def frame_of(_: LoadedModel) -> tuple[Frame, bool]:
            if ctype == "text/csv":
                try:
                    return parse_csv(body.decode()), True
                except UnicodeDecodeError:
                    raise InvalidInput("the CSV body is not UTF-8", field="body") from None
            return parse_json(self._json(body)), False

        served = await self._serve(endpoint, headers, frame_of, started)
        payload: dict[str, Any] = {"predictions": served.predictions}
        if served.model.output is not Output.LABEL:
            payload["classes"] = served.model.classes
        await _respond(
            send,
            200,
            orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
            _served_headers(served),
        )

    async def _serve(
        self,
        endpoint: EndpointRuntime,
        headers: dict[str, str],
        frame_of: Callable[[LoadedModel], tuple[Frame, bool]],
        started: float,
    ) -> Served:
        config, variant, limit = self._admit(endpoint, headers)
        counts = self.recorder.counters(endpoint.name, config.version, variant.name)
        model_ms = 0.0
        failed = False
        try:
            model = variant.model  # resident: no coroutine on the hot path
            if model is None or variant.multi is not None:
                model = await self.state.model_for(
                    config, variant, headers.get("x-slipway-target-model")
                )
            else:
                model.last_used = time.monotonic()
            frame, from_text = frame_of(model)
            allowed: list[str] = []
            if config.enricher is not None:
                if frame.positional:
                    raise InvalidInput("an enriched endpoint needs named columns", field="inputs")
                frame = Frame(config.enricher.enrich(frame.columns, frame.rows), frame.rows)
                allowed = config.enricher.key_fields
            batch = check(
                frame,
                model.schema,
                max_rows=config.spec.max_batch_rows,
                from_text=from_text,
                allowed_extra=allowed,
            )
            t0 = time.perf_counter()
            try:
                if model.fast and batch.rows <= INLINE_ROWS:
                    raw = model.predict(batch)
                else:
                    raw = await asyncio.get_running_loop().run_in_executor(
                        variant.executor, model.predict, batch
                    )
            except Exception as exc:
                failed = True
                raise ModelError(
                    f"the model failed: {type(exc).__name__}: {exc}",
                    details={"variant": variant.name},
                ) from None
            finally:
                model_ms = (time.perf_counter() - t0) * 1000
            answered = answer(raw)
            total, count = numeric_summary(raw)
            counts.prediction_sum += total
            counts.prediction_count += count
            if endpoint.canary is not None and config is endpoint.target:
                endpoint.canary.prediction_sum += total
                endpoint.canary.prediction_count += count
            given = headers.get("x-slipway-inference-id", "")
            inference_id = (
                given
                if given and _INFERENCE_ID.fullmatch(given)
                else f"{random.getrandbits(128):032x}"
            )
            served = Served(
                config,
                variant,
                model,
                batch,
                answered.predictions,
                inference_id,
                answered.labels,
                answered.probabilities,
            )
            self._after(endpoint, served, counts)
            return served
        except SlipwayError as exc:
            failed = failed or exc.status_code >= 500
            raise
        finally:
            self._release(endpoint, limit)
            elapsed_ms = (time.perf_counter() - started) * 1000
            counts.observe(elapsed_ms, model_ms, error=failed)
            if endpoint.canary is not None and config is endpoint.target:
                endpoint.canary.observe(elapsed_ms, model_ms, error=failed)
                self._judge(endpoint, config, endpoint.canary)

    def _admit(
        self, endpoint: EndpointRuntime, headers: dict[str, str]
    ) -> tuple[ConfigRuntime, VariantRuntime, int | None]:
        """Shed a request past this worker's or the endpoint's concurrency (429), else
        route it to a variant and count it in flight until :meth:`_release`; returns the
        config, the variant and the endpoint's limit (None: unbounded)."""
        if self.in_flight >= self.limits.max_in_flight:
            self.shed += 1
            raise Overloaded("the gateway is at capacity; retry shortly", retry_after=1.0)
        target = headers.get("x-slipway-target-variant") or headers.get(
            "x-amzn-sagemaker-target-variant"
        )
        config, variant = endpoint.route(target)
        limit = config.spec.max_concurrency
        if limit is not None:
            busy = self.busy.get(endpoint.name, 0)
            if busy >= limit:
                self.shed += 1
                raise Overloaded(
                    f"endpoint {endpoint.name!r} has {limit} requests in flight in this"
                    " gateway worker, its max_concurrency; retry shortly",
                    retry_after=1.0,
                )
            self.busy[endpoint.name] = busy + 1
        self.in_flight += 1
        return config, variant, limit

    def _release(self, endpoint: EndpointRuntime, limit: int | None) -> None:
        self.in_flight -= 1
        if limit is not None:
            self.busy[endpoint.name] -= 1

    def _judge(self, endpoint: EndpointRuntime, config: ConfigRuntime, canary: Counters) -> None:
        """The deployment's alarms over this worker's traffic to the new config, after each
        of its requests: a trip stops routing to it before the next request is routed.
        Latency percentiles cost more than a ratio, so past the first requests they are
        judged every 8th request."""
        if config.tripped is not None:
            return
        alarms = config.spec.deployment.alarms
        if canary.requests > 64 and canary.requests % 8:
            alarms = [a for a in alarms if a.metric not in LATENCY_ALARMS]
        found = first_tripped(alarms, canary)
        if found is None:
            return
        alarm, measured = found
        reason = trip_reason(alarm, measured, canary.requests, endpoint.target_percent)
        self.state.trip(endpoint.name, config, alarm.name, reason)
        log.warning("endpoint %s config %d: %s", endpoint.name, config.version, reason)

    def _after(self, endpoint: EndpointRuntime, served: Served, counts: Any) -> None:
        """Capture and shadow traffic: off the request path, never failing it."""
        config = served.config
        capture = config.spec.data_capture
        shadowed = (
            [s for s in config.shadows if random.random() * 100 < s.sampling_percent]
            if config.shadows
            else ()
        )
        sampled = capture.enabled and (
            capture.sampling_percent >= 100 or random.random() * 100 < capture.sampling_percent
        )
        if (shadowed or sampled) and not self._capture(endpoint.name, served, "production"):
            counts.capture_dropped += 1
        if not shadowed:
            return
        loop = asyncio.get_running_loop()
        for shadow in shadowed:
            future = loop.run_in_executor(
                shadow.executor, self._shadow, endpoint.name, served, shadow
            )
            future.add_done_callback(_ignore_result)

    def _capture(self, endpoint: str, served: Served, kind: str) -> bool:
        return self.capture.offer(
            endpoint=endpoint,
            variant=served.variant.name,
            config_version=served.config.version,
            model=served.model,
            kind=kind,
            batch=served.batch,
            predictions=served.predictions,
            inference_id=served.inference_id,
            labels=served.labels,
            probabilities=served.probabilities,
        )

    def _shadow(self, endpoint: str, served: Served, shadow: VariantRuntime) -> None:
        counts = self.recorder.counters(endpoint, served.config.version, shadow.name)
        started = time.perf_counter()
        failed = False
        model_ms = 0.0
        try:
            model = shadow.model
            if model is None:
                return
            t0 = time.perf_counter()
            raw = model.predict(served.batch)
            model_ms = (time.perf_counter() - t0) * 1000
            answered = answer(raw)
            shadow_served = Served(
                served.config,
                shadow,
                model,
                served.batch,
                answered.predictions,
                served.inference_id,
                answered.labels,
                answered.probabilities,
            )
            if not self._capture(endpoint, shadow_served, "shadow"):
                counts.capture_dropped += 1
        except Exception:
            failed = True
            log.warning("shadow variant %s failed", shadow.name, exc_info=True)
        finally:
            counts.observe((time.perf_counter() - started) * 1000, model_ms, error=failed)

    # -- Open Inference Protocol V2 ------------------------------------------------------

    async def _oip(
        self, path: str, method: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        parts = [p for p in path.split("/") if p][1:]  # drop "v2"
        if not parts:
            _allow(method, "GET")
            body = {"name": "slipway", "version": __version__, "extensions": []}
            await _respond(send, 200, orjson.dumps(body))
            return
        if parts[0] == "health" and len(parts) == 2 and parts[1] in ("live", "ready"):
            _allow(method, "GET")
            ready = parts[1] == "live" or self.started
            await _respond(send, 200 if ready else 503, orjson.dumps({parts[1]: ready}))
            return
        if parts[0] != "models" or len(parts) < 2:
            raise NotFound(f"no route for {method} {path}")
        name = parts[1]
        rest = parts[2:]
        if len(rest) >= 2 and rest[0] == "versions":
            rest = rest[2:]
        endpoint = self._endpoint(name)
        if not rest:
            _allow(method, "GET")
            await _respond(send, 200, orjson.dumps(metadata(endpoint)))
        elif rest == ["ready"]:
            _allow(method, "GET")
            ready = any(c is not None and c.ready for c in (endpoint.active, endpoint.target))
            await _respond(
                send, 200 if ready else 503, orjson.dumps({"name": name, "ready": ready})
            )
        elif rest == ["infer"]:
            _allow(method, "POST")
            started = time.perf_counter()
            headers = _headers(scope)
            ctype = headers.get("content-type", "application/json").split(";")[0].strip().lower()
            header_length = headers.get("inference-header-content-length")
            if ctype != "application/json" and header_length is None:
                raise UnsupportedMediaType(
                    f"content type {ctype!r} is not accepted; send application/json",
                    details={"field": "content-type"},
                )
            raw = await self._body(scope, receive)
            if header_length is not None:  # present, even empty: it must fit
                if not header_length.isdigit() or int(header_length) > len(raw):
                    raise InvalidInput(
                        "Inference-Header-Content-Length does not fit the body",
                        field="inference-header-content-length",
                    )
                split = int(header_length)
                body = self._json(raw[:split])
                if isinstance(body, dict):
                    attach_binary(body, raw[split:])
            else:
                body = self._json(raw)
            served = await self._serve(
                endpoint, headers, lambda model: (parse_oip(body, model.schema), False), started
            )
            response = {
                "model_name": name,
                "model_version": str(served.model.version),
                "id": body.get("id") or served.inference_id,
                "outputs": oip_outputs(served),
            }
            await _respond(send, 200, orjson.dumps(response), _served_headers(served))
        else:
            raise NotFound(f"no route for {method} {path}")


def _ignore_result(future: Any) -> None:
    future.exception()  # shadow errors are logged in _shadow; never surface here


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise _MethodNotAllowed(f"use {allowed}")


class _MethodNotAllowed(SlipwayError):
    status_code = 405
    code = "method_not_allowed"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _served_headers(served: Served) -> list[tuple[bytes, bytes]]:
    return [
        *_JSON,
        (b"x-slipway-variant", served.variant.name.encode()),
        (b"x-slipway-inference-id", served.inference_id.encode()),
        (b"x-slipway-model-version", f"{served.model.name}:{served.model.version}".encode()),
        (b"x-slipway-config-version", str(served.config.version).encode()),
    ]


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*(headers or _JSON), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, exc: SlipwayError) -> None:
    headers = list(_JSON)
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.http_headers().items()]
    await _respond(send, exc.status_code, orjson.dumps(exc.to_dict()), headers)
