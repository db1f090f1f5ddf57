"""``POST /endpoints/{name}/invocations``: SageMaker's invocation protocol with MLflow's
scoring-server bodies, so clients of either keep working unchanged.

The body is CSV (``text/csv``, no header: the model's columns in order) or JSON in one of
MLflow's formats (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``;
see :mod:`slipway.serving.gateway.inputs`). A variant is chosen by SageMaker's
``X-Amzn-SageMaker-Target-Variant`` or ``X-Slipway-Target-Variant``. The answer is
``{"predictions": [...]}``, with ``classes`` beside for a version returning probabilities
(the table in :mod:`slipway.serving.gateway.app`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from slipway.core.errors import InvalidInput
from slipway.core.settings import ServingSettings
from slipway.registry.models import Output
from slipway.registry.predict import LoadedModel
from slipway.serving.gateway.asgi import (
    Receive,
    Scope,
    Send,
    header_map,
    load_json,
    read_body,
    respond,
)
from slipway.serving.gateway.inference import Inference
from slipway.serving.gateway.inputs import Frame, invocation_type, parse_csv, parse_json
from slipway.serving.gateway.routing import Router


class SageMaker:
    """The invocations route of one worker."""

    def __init__(self, router: Router, inference: Inference, limits: ServingSettings) -> None:
        self.router = router
        self.inference = inference
        self.limits = limits

    async def invocations(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one invocation of endpoint ``name``."""
        started = time.perf_counter()
        headers = header_map(scope)
        endpoint = self.router.endpoint(name)
        ctype = invocation_type(headers)
        body = await read_body(scope, receive, self.limits.max_body_bytes)
        max_depth = self.limits.max_json_depth

        def frame_of(_: LoadedModel) -> tuple[Frame, bool]:
            if ctype == "text/csv":
                try:
                    return parse_csv(body.decode()), True
                except UnicodeDecodeError:
                    raise InvalidInput("the CSV body is not UTF-8", field="body") from None
            return parse_json(load_json(body, max_depth)), False

        served = await self.inference.serve(endpoint, headers, frame_of, started)
        payload: dict[str, Any] = {"predictions": served.predictions}
        if served.model.output is not Output.LABEL:
            payload["classes"] = served.model.classes
        await respond(
            send,
            200,
            orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
            served.headers(),
        )
