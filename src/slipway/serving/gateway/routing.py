"""Which endpoint a request names, whether this worker admits it, which variant serves it,
and whether a deployment's new config keeps receiving traffic after it.

Admission is counted per worker process (each gateway worker has its own event loop and
counters): a request past ``serving.max_in_flight`` in the worker, or past its endpoint's
``max_concurrency``, is answered 429 rather than queued, so the latency of the admitted
ones stays bounded. The cheaper shedding, before the app runs at all, is the HTTP
server's (:mod:`slipway.serving.gateway.http`); it counts its 429s in :attr:`Router.shed`
too, so ``/metrics`` shows one figure.
"""

from __future__ import annotations

import logging

from slipway.core.errors import NotFound, Overloaded
from slipway.core.settings import ServingSettings
from slipway.serving.alarms import LATENCY_ALARMS, first_tripped, trip_reason
from slipway.serving.gateway.runtime import (
    ConfigRuntime,
    EndpointRuntime,
    GatewayState,
    VariantRuntime,
)
from slipway.serving.stats import Counters

log = logging.getLogger("slipway.serving.gateway")


class Router:
    """One worker's routing: endpoint lookup, admission and the canary's judging."""

    def __init__(self, state: GatewayState, limits: ServingSettings) -> None:
        self.state = state
        self.limits = limits  # read per request: a changed limit applies to the next one
        self.in_flight = 0
        # Per endpoint with a max_concurrency: its requests being served in this worker.
        self.busy: dict[str, int] = {}
        self.shed = 0  # requests answered 429 by this worker (here and in gateway/http.py)

    def endpoint(self, name: str) -> EndpointRuntime:
        """The endpoint this worker serves under ``name``; 404 if it has none."""
        endpoint = self.state.endpoints.get(name)
        if endpoint is None:
            raise NotFound(f"endpoint {name!r} does not exist", details={"endpoint": name})
        return endpoint

    def admit(
        self, endpoint: EndpointRuntime, headers: dict[str, str]
    ) -> tuple[ConfigRuntime, VariantRuntime, int | None]:
        """Shed a request past this worker's or the endpoint's concurrency (429), else
        route it to a variant and count it in flight until :meth:`release`; returns the
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

    def release(self, endpoint: EndpointRuntime, limit: int | None) -> None:
        """End what :meth:`admit` counted; ``limit`` is the one it returned."""
        self.in_flight -= 1
        if limit is not None:
            self.busy[endpoint.name] -= 1

    def judge(self, endpoint: EndpointRuntime, config: ConfigRuntime, canary: Counters) -> None:
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
