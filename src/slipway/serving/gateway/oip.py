"""The Open Inference Protocol (V2, KServe) on the gateway: ``/v2`` (server metadata),
``/v2/health/{live,ready}``, ``/v2/models/{name}[/versions/{v}]`` (model metadata),
``.../ready`` and ``.../infer``, and the shapes of what it answers: the response tensors of
a served request and an endpoint's model metadata.

An endpoint is the OIP "model"; its versions are the model versions its live variants
serve. Without a ``/versions/{v}`` segment routing picks the variant as for any protocol;
with one, only the live variants serving model version ``v`` are routed to (and metadata
and readiness are that version's), and a version no live variant serves is a 404 naming
it — never silently answered by another version. The infer body is JSON, optionally
followed by binary tensor data after ``Inference-Header-Content-Length`` bytes (the
protocol's binary extension); its JSON tensor values are checked against their declared
datatype's range (:func:`~slipway.serving.gateway.inputs.check_tensor`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from slipway import __version__
from slipway.core.errors import InvalidInput, NotFound, UnsupportedMediaType
from slipway.core.settings import ServingSettings
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_name, split_scoped
from slipway.registry.models import Output
from slipway.serving.gateway.asgi import (
    Receive,
    Scope,
    Send,
    allow,
    header_map,
    load_json,
    read_body,
    respond,
)
from slipway.serving.gateway.inference import Inference, Served
from slipway.serving.gateway.inputs import attach_binary, jsonable, parse_oip
from slipway.serving.gateway.routing import Router, VersionPinned, live_variants

if TYPE_CHECKING:
    from slipway.registry.predict import LoadedModel
    from slipway.serving.gateway.runtime import EndpointRuntime


class OpenInference:
    """The ``/v2`` routes of one worker; ``started`` tells whether the worker is ready."""

    def __init__(
        self,
        router: Router,
        inference: Inference,
        limits: ServingSettings,
        started: Callable[[], bool],
    ) -> None:
        self.router = router
        self.inference = inference
        self.limits = limits
        self.started = started

    async def route(
        self,
        path: str,
        method: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        """Answer a request whose path is ``/v2`` or under it; its models are the
        endpoints of ``workspace`` (``/workspaces/<ws>/v2/...``)."""
        parts = [p for p in path.split("/") if p][1:]  # drop "v2"
        if not parts:
            allow(method, "GET")
            body = {"name": "slipway", "version": __version__, "extensions": []}
            await respond(send, 200, orjson.dumps(body))
            return
        if parts[0] == "health" and len(parts) == 2 and parts[1] in ("live", "ready"):
            allow(method, "GET")
            ready = parts[1] == "live" or self.started()
            await respond(send, 200 if ready else 503, orjson.dumps({parts[1]: ready}))
            return
        if parts[0] != "models" or len(parts) < 2:
            raise NotFound(f"no route for {method} {path}")
        name = parts[1]
        rest = parts[2:]
        version: str | None = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        if rest not in ([], ["ready"], ["infer"]):
            raise NotFound(f"no route for {method} {path}")
        endpoint = self.router.endpoint(scoped_name(workspace, name))
        if version is not None:
            endpoint = self.router.pinned(endpoint, version)  # 404 unless a live variant serves it
        if not rest:
            allow(method, "GET")
            await respond(send, 200, orjson.dumps(metadata(endpoint)))
        elif rest == ["ready"]:
            allow(method, "GET")
            # A pinned version is served by a live (ready) config, or was a 404 above.
            ready = version is not None or any(
                c is not None and c.ready for c in (endpoint.active, endpoint.target)
            )
            await respond(send, 200 if ready else 503, orjson.dumps({"name": name, "ready": ready}))
        else:  # infer
            allow(method, "POST")
            await self._infer(name, endpoint, scope, receive, send)

    async def _infer(
        self, name: str, endpoint: EndpointRuntime, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        headers = header_map(scope)
        ctype = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        header_length = headers.get("inference-header-content-length")
        if ctype != "application/json" and header_length is None:
            raise UnsupportedMediaType(
                f"content type {ctype!r} is not accepted; send application/json",
                details={"field": "content-type"},
            )
        raw = await read_body(scope, receive, self.limits.max_body_bytes)
        max_depth = self.limits.max_json_depth
        if header_length is not None:  # present, even empty: it must fit
            if not header_length.isdigit() or int(header_length) > len(raw):
                raise InvalidInput(
                    "Inference-Header-Content-Length does not fit the body",
                    field="inference-header-content-length",
                )
            split = int(header_length)
            body = load_json(raw[:split], max_depth)
            if isinstance(body, dict):
                attach_binary(body, raw[split:])
        else:
            body = load_json(raw, max_depth)
        served = await self.inference.serve(
            endpoint, headers, lambda model: (parse_oip(body, model.schema), False), started
        )
        response = {
            "model_name": name,
            "model_version": str(served.model.version),
            "id": body.get("id") or served.inference_id,
            "outputs": oip_outputs(served),
        }
        await respond(send, 200, orjson.dumps(response), served.headers())


def oip_outputs(served: Served) -> list[dict[str, Any]]:
    model = served.model
    if model.output is not Output.LABEL and served.probabilities is not None:
        outputs = [] if served.labels is None else [_tensor("label", served.labels)]
        probabilities = _tensor("probabilities", jsonable(served.probabilities))
        probabilities["parameters"] = {"classes": orjson.dumps(model.classes).decode()}
        return [*outputs, probabilities]
    predictions = served.predictions
    if predictions and isinstance(predictions[0], dict):
        names = list(predictions[0])
        return [_tensor(name, [row.get(name) for row in predictions]) for name in names]
    return [_tensor("predict", predictions)]


def _tensor(name: str, values: list[Any]) -> dict[str, Any]:
    first = next((v for v in values if v is not None), None)
    shape = [len(values)]
    if isinstance(first, list):
        shape.append(len(first))
        values = [x for row in values for x in row]
        first = next((v for v in values if v is not None), None)
    if isinstance(first, bool):
        datatype = "BOOL"
    elif isinstance(first, int):
        datatype = "INT64"
    elif isinstance(first, float) or first is None:
        datatype = "FP64"
    else:
        datatype = "BYTES"
        values = [str(v) for v in values]
    return {"name": name, "datatype": datatype, "shape": shape, "data": values}


def metadata(endpoint: EndpointRuntime) -> dict[str, Any]:
    """An endpoint's model metadata: its active (else deploying) config's versions and
    first loaded model; of a version-pinned endpoint, that version's."""
    config = endpoint.active or endpoint.target
    variants = config.variants if config is not None else []
    if isinstance(endpoint, VersionPinned):
        variants = [v for _, v in live_variants(endpoint, endpoint.version)]
    versions: list[str] = []
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    if variants:
        versions = sorted({str(v.model_version) for v in variants})
        model = next((v.model for v in variants if v.model is not None), None)
        if model is not None and model.schema:
            types = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32",
                     "boolean": "BOOL"}  # fmt: skip
            inputs = [
                {"name": c.name, "datatype": types.get(c.type, "BYTES"), "shape": [-1]}
                for c in model.schema
            ]
        if model is not None and model.output is not Output.LABEL:
            outputs = _score_outputs(model)
    return {
        "name": split_scoped(endpoint.name)[1],
        "versions": versions,
        "platform": "slipway",
        "inputs": inputs,
        "outputs": outputs,
    }


def _score_outputs(model: LoadedModel) -> list[dict[str, Any]]:
    """The OIP outputs of a version returning probabilities (and labels)."""
    classes = model.classes or []
    outputs = []
    if model.output is Output.BOTH:
        label = _tensor("label", list(classes))
        outputs.append({"name": "label", "datatype": label["datatype"], "shape": [-1]})
    outputs.append(
        {
            "name": "probabilities",
            "datatype": "FP64",
            "shape": [-1, len(classes)],
            "parameters": {"classes": orjson.dumps(classes).decode()},
        }
    )
    return outputs
