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
import random
from dataclasses import dataclass, fields

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

    def pinned(self, endpoint: EndpointRuntime, version: str) -> EndpointRuntime:
        """``endpoint`` routed only to the live variants serving model version ``version``
        (an Open Inference Protocol ``/versions/{v}`` URL); 404 naming the version when
        none does."""
        number = (
            int(version) if version.isascii() and version.isdigit() and len(version) < 19 else -1
        )
        if not live_variants(endpoint, number):
            served = sorted({v.model_version for _, v in live_variants(endpoint, None)})
            raise NotFound(
                f"endpoint {endpoint.name!r} serves no model version {version!r}"
                f" (it serves {', '.join(map(str, served)) or 'none yet'})",
                details={"field": "version", "version": version, "versions": served},
            )
        view = {f.name: getattr(endpoint, f.name) for f in fields(endpoint)}
        return VersionPinned(**view, version=number)

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


def live_variants(
    endpoint: EndpointRuntime, version: int | None
) -> list[tuple[ConfigRuntime, VariantRuntime]]:
    """The variants requests may be routed to now (the deploying config's first, unless it
    tripped), with their configs; of model version ``version`` only, unless None."""
    target, active = endpoint.target, endpoint.active
    configs = [
        c
        for c in (target if target is not None and target.tripped is None else None, active)
        if c is not None and c.ready
    ]
    return [
        (c, v) for c in configs for v in c.variants if version is None or v.model_version == version
    ]


@dataclass
class VersionPinned(EndpointRuntime):
    """A view of an endpoint for one request that named a model version: the same
    configs, counters and name (so admission, canary judging and capture see the real
    endpoint), routed only among the live variants serving ``version``.

    When both the active and the deploying config serve it, the deployment's traffic
    split still decides between them; within a config the variants' weights do (all of
    weight 0: any of them, as a named version was asked for explicitly).
    """

    version: int = 0

    def route(self, target_variant: str | None) -> tuple[ConfigRuntime, VariantRuntime]:
        matching = [
            (c, v)
            for c, v in live_variants(self, self.version)
            if not target_variant or v.name == target_variant
        ]
        if not matching:
            raise NotFound(
                f"endpoint {self.name!r} has no live variant serving model version"
                f" {self.version}" + (f" named {target_variant!r}" if target_variant else ""),
                details={"field": "version", "version": str(self.version)},
            )
        config = matching[0][0]  # the deploying config first, when it serves the version
        other = next((c for c, _ in matching if c is not config), None)
        if other is not None and random.random() * 100 >= self.target_percent:
            config = other
        variants = [v for c, v in matching if c is config]
        weights = [v.spec.weight for v in variants]
        if len(variants) == 1 or sum(weights) <= 0:
            return config, random.choice(variants)
        return config, random.choices(variants, weights)[0]
