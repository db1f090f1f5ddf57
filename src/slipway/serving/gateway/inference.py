"""One inference, whatever protocol asked for it: admit and route the request, read its
rows into a checked batch (joined with online features on an enriched endpoint), predict,
and count it, then hand what was served to capture and shadow traffic.

The protocols (:mod:`~slipway.serving.gateway.sagemaker`, :mod:`~slipway.serving.gateway.oip`)
only parse their body and shape their answer around :meth:`Inference.serve`. This is the
measured hot path (``bench/serving.py``): a resident model on a small batch predicts
inline on the event loop with no coroutine or thread hop, because a hop costs more than
the prediction.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from slipway.core.errors import InvalidInput, ModelError, SlipwayError
from slipway.registry.predict import Batch, LoadedModel
from slipway.serving.gateway.asgi import JSON_HEADERS, Headers
from slipway.serving.gateway.capture import Captured
from slipway.serving.gateway.inputs import Frame, answer, check, numeric_summary
from slipway.serving.gateway.metrics import Recorder
from slipway.serving.gateway.routing import Router
from slipway.serving.gateway.runtime import (
    ConfigRuntime,
    EndpointRuntime,
    GatewayState,
    VariantRuntime,
)
from slipway.serving.stats import Counters

# Small batches on fast-path models predict inline: a thread hop costs more than they do.
INLINE_ROWS = 64
_INFERENCE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass
class Served:
    """What one request was answered with, and by which config, variant and model."""

    config: ConfigRuntime
    variant: VariantRuntime
    model: LoadedModel
    batch: Batch
    predictions: list[Any]
    inference_id: str
    # The request's one time (microseconds since the epoch): its enrichment's windows
    # end at it and its capture records it, so a recomputation can ask for that moment.
    at_us: int
    labels: list[Any] | None = None  # a version returning both: the labels
    probabilities: np.ndarray | None = None  # a version returning probabilities
    captured: Captured | None = None  # what capture records instead of the batch

    def headers(self) -> Headers:
        """The response headers naming what served it (every protocol sends them)."""
        return [
            *JSON_HEADERS,
            (b"x-slipway-variant", self.variant.name.encode()),
            (b"x-slipway-inference-id", self.inference_id.encode()),
            (b"x-slipway-model-version", f"{self.model.name}:{self.model.version}".encode()),
            (b"x-slipway-config-version", str(self.config.version).encode()),
        ]


# Reads a request's rows for the model it was routed to: the frame, and whether it came
# from text (CSV), whose cells are converted to the schema's types rather than checked.
FrameReader = Callable[[LoadedModel], tuple[Frame, bool]]
# Called with every served request before it is counted: capture and shadow traffic.
AfterServed = Callable[[EndpointRuntime, Served, Counters], None]


def now_us() -> int:
    """The time now, in microseconds since the epoch: a request's one time."""
    return time.time_ns() // 1000


def checked_batch(
    config: ConfigRuntime, model: LoadedModel, frame: Frame, from_text: bool, at_us: int
) -> tuple[Batch, Captured | None]:
    """The request's rows joined with the endpoint's online features as of ``at_us``
    (when it is enriched: the entity keys, and a view's request fields and columns the
    model does not take, may then stay beside the model's columns) and checked against
    the model's signature; and what capture records of it when that is not the batch."""
    enricher = config.enricher
    if enricher is None:
        return check(
            frame, model.schema, max_rows=config.spec.max_batch_rows, from_text=from_text
        ), None
    if frame.positional:
        raise InvalidInput("an enriched endpoint needs named columns", field="inputs")
    enriched = enricher.enrich(frame.columns, frame.rows, at_us)
    batch = check(
        Frame(enriched.columns, frame.rows),
        model.schema,
        max_rows=config.spec.max_batch_rows,
        from_text=from_text,
        allowed_extra=enricher.allowed_extra,
    )
    return batch, enricher.captured(enriched, batch)


class Inference:
    """Serves requests for the protocols; counts them per endpoint, config and variant."""

    def __init__(
        self, state: GatewayState, router: Router, recorder: Recorder, after: AfterServed
    ) -> None:
        self.state = state
        self.router = router
        self.recorder = recorder
        self.after = after

    async def serve(
        self,
        endpoint: EndpointRuntime,
        headers: dict[str, str],
        frame_of: FrameReader,
        started: float,
    ) -> Served:
        """Serve one request to ``endpoint``, begun at ``started`` (``perf_counter``).

        Raises what the request did wrong (4xx), :class:`Overloaded` past the limits, and
        :class:`ModelError` when the model fails; every outcome is counted, and on the
        deployment's new config judged against its alarms."""
        config, variant, limit = self.router.admit(endpoint, headers)
        # The counters are looked up where they are added to, never across an await: the
        # recorder's flush swaps them out meanwhile, and counts added to swapped-out ones
        # would be lost (a request's whole count, when the model ran on a thread).
        key = (endpoint.name, config.version, variant.name)
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
            at_us = now_us()
            batch, captured = checked_batch(config, model, frame, from_text, at_us)
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
            counts = self.recorder.counters(*key)
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
                at_us,
                answered.labels,
                answered.probabilities,
                captured,
            )
            self.after(endpoint, served, counts)
            return served
        except SlipwayError as exc:
            failed = failed or exc.status_code >= 500
            raise
        finally:
            self.router.release(endpoint, limit)
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.recorder.counters(*key).observe(elapsed_ms, model_ms, error=failed)
            if endpoint.canary is not None and config is endpoint.target:
                endpoint.canary.observe(elapsed_ms, model_ms, error=failed)
                self.router.judge(endpoint, config, endpoint.canary)
