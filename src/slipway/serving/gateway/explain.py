"""``POST /endpoints/{name}/explain``: per-row feature attributions from a served model.

The request is an invocation's: MLflow's JSON formats or CSV, routed to a variant the
same way (``X-Slipway-Target-Variant``, ``X-Slipway-Target-Model``), joined with the
endpoint's online features when it is enriched, and checked against the model's
signature by the same code. The answer holds, per row, the prediction the endpoint
would serve, the base value and one attribution per feature, which add up to the
explained output in ``output_space`` (see :mod:`slipway.explain.base`)::

    {"output_space": "raw", "features": ["x1", "x2"],
     "explanations": [{"prediction": 0.91, "base_value": -0.2, "explained_class": 1,
                       "attributions": {"x1": 1.9, "x2": 0.6}}]}

A model without an explainer (see :mod:`slipway.explain.build`) is answered 400 naming
``model``. Explanations are not invocations: they are admitted under the same in-flight
limits but recorded in no invocation counter, latency or capture — monitoring sees the
endpoint's traffic, not its explanations.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson

from slipway.core.errors import (
    InvalidInput,
    ModelError,
)
from slipway.core.settings import ExplainSettings, ServingSettings
from slipway.explain.base import Explainer, Explanation, Unexplainable
from slipway.explain.build import explainer_of
from slipway.explain.kernel import KernelOptions
from slipway.registry.models import Output
from slipway.registry.predict import Batch, LoadedModel
from slipway.serving.gateway.asgi import Headers, Receive, Scope, header_map, load_json, read_body
from slipway.serving.gateway.inference import checked_batch, now_us
from slipway.serving.gateway.inputs import answer, invocation_type, parse_csv, parse_json
from slipway.serving.gateway.routing import Router
from slipway.serving.gateway.runtime import GatewayState

# A compiled tree walk costs ~0.1 ms a row: a few rows are explained on the event loop,
# more (and every Kernel SHAP) in a thread.
INLINE_ROWS = 4


class Explain:
    """The explain route of one worker; Kernel SHAP runs within ``explain``'s budget."""

    def __init__(
        self,
        router: Router,
        state: GatewayState,
        limits: ServingSettings,
        explain: ExplainSettings,
    ) -> None:
        self.router = router
        self.state = state
        self.limits = limits
        self.explain = explain

    async def __call__(self, name: str, scope: Scope, receive: Receive) -> tuple[bytes, Headers]:
        """The response body and headers for an explain request to endpoint ``name``."""
        headers = header_map(scope)
        endpoint = self.router.endpoint(name)
        ctype = invocation_type(headers)
        body = await read_body(scope, receive, self.limits.max_body_bytes)
        config, variant, limit = self.router.admit(endpoint, headers)
        try:
            model = await self.state.model_for(
                config, variant, headers.get("x-slipway-target-model")
            )
            if ctype == "text/csv":
                try:
                    frame, from_text = parse_csv(body.decode()), True
                except UnicodeDecodeError:
                    raise InvalidInput("the CSV body is not UTF-8", field="body") from None
            else:
                frame = parse_json(load_json(body, self.limits.max_json_depth))
                from_text = False
            batch, _ = checked_batch(config, model, frame, from_text, now_us())
            explainer = await _explainer(model, KernelOptions.of(self.explain))
            if explainer.inline and model.fast and batch.rows <= INLINE_ROWS:
                explanation, raw = _explain(model, explainer, batch)
            else:
                explanation, raw = await asyncio.get_running_loop().run_in_executor(
                    None, _explain, model, explainer, batch
                )
        finally:
            self.router.release(endpoint, limit)
        payload = _payload(model, explanation, answer(raw).predictions)
        response_headers = [
            (b"content-type", b"application/json"),
            (b"x-slipway-variant", variant.name.encode()),
            (b"x-slipway-model-version", f"{model.name}:{model.version}".encode()),
            (b"x-slipway-config-version", str(config.version).encode()),
        ]
        return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), response_headers


async def _explainer(model: LoadedModel, options: KernelOptions) -> Explainer:
    """The model's explainer: cached on it, built in a thread the first time."""
    try:
        if model.explainer is not None:  # built (or refused) already: no thread hop
            return explainer_of(model, options)
        return await asyncio.get_running_loop().run_in_executor(None, explainer_of, model, options)
    except Unexplainable as exc:
        raise InvalidInput(str(exc), field="model") from None
    except Exception as exc:  # building it failed for a reason of ours, not the request's
        raise ModelError(f"the explainer could not be built: {type(exc).__name__}: {exc}") from None


def _explain(model: LoadedModel, explainer: Explainer, batch: Batch) -> tuple[Explanation, Any]:
    try:
        raw = model.predict(batch)
        explanation = explainer.explain(batch.matrix())
    except Exception as exc:  # the user's model (Kernel SHAP calls it), as invocations
        raise ModelError(f"the model failed: {type(exc).__name__}: {exc}") from None
    return explanation, raw


def _payload(
    model: LoadedModel, explanation: Explanation, predictions: list[Any]
) -> dict[str, Any]:
    names = list(explanation.names)
    values = explanation.values.tolist()
    bases = np.asarray(explanation.base, dtype=np.float64).tolist()
    rows: list[dict[str, Any]] = []
    for index, (prediction, base, row) in enumerate(zip(predictions, bases, values, strict=True)):
        item: dict[str, Any] = {
            "prediction": prediction,
            "base_value": base,
            "attributions": dict(zip(names, row, strict=True)),
        }
        if explanation.classes is not None:
            item["explained_class"] = explanation.classes[index]
        rows.append(item)
    payload: dict[str, Any] = {
        "output_space": explanation.output_space.value,
        "features": names,
        "explanations": rows,
    }
    if model.output is not Output.LABEL:
        payload["classes"] = model.classes
    return payload
