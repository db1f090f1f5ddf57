"""What follows a served request: its capture sample and its shadow copies.

A shadow variant gets a sampled copy of production requests and its answers are only
captured (kind ``shadow``, under the same inference id) for comparison, never returned.
It predicts in its own variant's thread pool, off the request path, and nothing it does
can fail or slow the production answer beyond handing it to the pool. A shadowed request's
production answer is captured even when the endpoint's capture is off, so every shadow row
has its production twin.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from slipway.serving.gateway.capture import CaptureWriter, sampled
from slipway.serving.gateway.inference import Served
from slipway.serving.gateway.inputs import answer
from slipway.serving.gateway.metrics import Recorder
from slipway.serving.gateway.runtime import EndpointRuntime, VariantRuntime
from slipway.serving.stats import Counters

log = logging.getLogger("slipway.serving.gateway")


class Shadows:
    """Capture and shadow traffic for one worker (see the module docstring)."""

    def __init__(self, recorder: Recorder, capture: CaptureWriter) -> None:
        self.recorder = recorder
        self.capture = capture

    def after(self, endpoint: EndpointRuntime, served: Served, counts: Counters) -> None:
        """Capture and shadow traffic: off the request path, never failing it. Runs on
        the event loop, inside the request it follows."""
        config = served.config
        shadowed = (
            [s for s in config.shadows if random.random() * 100 < s.sampling_percent]
            if config.shadows
            else ()
        )
        if (shadowed or sampled(config.spec.data_capture)) and not self.capture.offer_served(
            endpoint.name, served, "production"
        ):
            counts.capture_dropped += 1
        if not shadowed:
            return
        loop = asyncio.get_running_loop()
        for shadow in shadowed:
            future = loop.run_in_executor(
                shadow.executor, self._shadow, endpoint.name, served, shadow
            )
            future.add_done_callback(_ignore_result)

    def _shadow(self, endpoint: str, served: Served, shadow: VariantRuntime) -> None:
        """Predict ``served``'s batch with ``shadow`` and capture it (in its thread pool)."""
        # Looked up where added to, after the prediction: a flush may swap them out meanwhile.
        key = (endpoint, served.config.version, shadow.name)
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
                served.at_us,
                answered.labels,
                answered.probabilities,
                served.captured,
            )
            if not self.capture.offer_served(endpoint, shadow_served, "shadow"):
                self.recorder.counters(*key).capture_dropped += 1
        except Exception:
            failed = True
            log.warning("shadow variant %s failed", shadow.name, exc_info=True)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.recorder.counters(*key).observe(elapsed_ms, model_ms, error=failed)


def _ignore_result(future: asyncio.Future[None]) -> None:
    future.exception()  # shadow errors are logged in _shadow; never surface here
