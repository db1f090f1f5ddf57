"""What one gateway worker serves right now, and how it follows the database.

A watcher thread polls the endpoints' ``generation`` twice a second. When one changed it
loads the models the new configs need (reusing models already loaded), reports per config
whether they loaded, and then swaps the endpoint's runtime in one assignment: requests in
flight finish on the runtime they started with, new ones see the new one. A config whose
models did not all load is never routed to; the active config keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import BackendUnavailable, Forbidden, InvalidInput, NotFound
from slipway.core.workspace import split_scoped
from slipway.registry.models import parse_model_ref
from slipway.registry.predict import LoadedModel, load_model
from slipway.registry.service import Registry
from slipway.serving.alarms import TRIPPED
from slipway.serving.gateway.enrichment import Enricher, build_enricher
from slipway.serving.spec import EndpointSpec, VariantSpec
from slipway.serving.states import EndpointStatus
from slipway.serving.stats import Counters
from slipway.serving.tables import EndpointConfigRow, EndpointRow, GatewayModelRow

log = logging.getLogger("slipway.serving.gateway")

POLL_SECONDS = 0.5


class VariantRuntime:
    """A variant of one config: its model (loaded, or loaded on demand)."""

    def __init__(
        self,
        spec: VariantSpec,
        config_version: int,
        model: LoadedModel | None,
        *,
        serverless_idle: float | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.spec = spec
        self.registry = registry  # its endpoint's workspace's: where it loads on demand
        self.name = spec.name
        self.config_version = config_version
        self.model = model
        self.serverless_idle = serverless_idle
        self.executor = ThreadPoolExecutor(spec.workers, thread_name_prefix=f"predict-{spec.name}")
        self._loading: Future[LoadedModel] | None = None
        self._lock = threading.Lock()
        self.multi: MultiModelCache | None = None
        self.sampling_percent = float(getattr(spec, "sampling_percent", 100.0))

    @property
    def model_name(self) -> str:
        return self.spec.model_name

    @property
    def model_version(self) -> int:
        assert self.spec.version is not None
        return self.spec.version


class MultiModelCache:
    """Models of a multi-model endpoint, loaded on first use and evicted least recently
    used when their total size passes the memory budget."""

    def __init__(
        self,
        registry: Registry,
        allowed: list[str],
        budget_bytes: float,
        environment: str,
    ) -> None:
        self.registry = registry
        self.allowed = set(allowed)
        self.budget_bytes = budget_bytes
        self.environment = environment
        self.models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self.evictions = 0
        self._lock = threading.Lock()
        self._aliases: dict[tuple[str, str], tuple[float, int]] = {}

    def resolve(self, ref: str) -> tuple[str, int]:
        name, version = parse_model_ref(ref, field="X-Slipway-Target-Model")
        if name not in self.allowed:
            raise NotFound(
                f"model {name!r} is not served by this endpoint",
                details={"field": "X-Slipway-Target-Model", "allowed": sorted(self.allowed)},
            )
        if version is None:
            raise InvalidInput(
                "name the target model's version (name:3) or alias (name@champion)",
                field="X-Slipway-Target-Model",
            )
        if isinstance(version, int):
            return name, version
        cached = self._aliases.get((name, version))
        if cached is not None and time.monotonic() - cached[0] < 5.0:
            return name, cached[1]
        number = self.registry.resolve(name, version)
        self._aliases[(name, version)] = (time.monotonic(), number)
        return name, number

    def get(self, key: tuple[str, int]) -> LoadedModel | None:
        with self._lock:
            model = self.models.get(key)
            if model is not None:
                self.models.move_to_end(key)
            return model

    def load(self, key: tuple[str, int]) -> LoadedModel:
        name, version = key
        self.registry.check_deployable(name, version, self.environment)
        model = load_model(self.registry, name, version)
        with self._lock:
            self.models[key] = model
            self.models.move_to_end(key)
            while len(self.models) > 1 and self.used_bytes() > self.budget_bytes:
                evicted, _ = self.models.popitem(last=False)
                self.evictions += 1
                log.info("multi-model: evicted %s:%s", *evicted)
        return model

    def used_bytes(self) -> int:
        return sum(m.size_bytes for m in self.models.values())


@dataclass
class ConfigRuntime:
    version: int
    spec: EndpointSpec
    variants: list[VariantRuntime]
    shadows: list[VariantRuntime]
    enricher: Enricher | None
    ready: bool
    error: str = ""
    cumulative: list[float] = field(default_factory=list)
    # Set when this worker's judgement of a deployment alarm tripped on this config's
    # traffic: from then on it gets no more requests here (see slipway.serving.alarms).
    tripped: str | None = None

    def __post_init__(self) -> None:
        total = sum(v.spec.weight for v in self.variants)
        running = 0.0
        for variant in self.variants:
            running += variant.spec.weight / total
            self.cumulative.append(running)

    def pick(self) -> VariantRuntime:
        draw = random.random()
        for variant, edge in zip(self.variants, self.cumulative, strict=True):
            if draw < edge:
                return variant
        return self.variants[-1]

    def variant(self, name: str) -> VariantRuntime | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass
class EndpointRuntime:
    name: str
    generation: int
    status: str
    active: ConfigRuntime | None
    target: ConfigRuntime | None
    target_percent: float
    # The target config's traffic in this worker during this phase, for its alarms; None
    # when nothing is being deployed or the deployment has no alarms.
    canary: Counters | None = None

    def route(self, target_variant: str | None) -> tuple[ConfigRuntime, VariantRuntime]:
        """The config and variant that serve a request."""
        target = self.target
        usable_target = (
            target if target is not None and target.ready and target.tripped is None else None
        )
        active = self.active if self.active is not None and self.active.ready else None
        if target_variant:
            for config in (usable_target, active):
                if config is not None:
                    variant = config.variant(target_variant)
                    if variant is not None:
                        return config, variant
            raise NotFound(
                f"endpoint {self.name!r} has no variant {target_variant!r}",
                details={"field": "X-Slipway-Target-Variant"},
            )
        if usable_target is not None and (
            active is None or random.random() * 100 < self.target_percent
        ):
            return usable_target, usable_target.pick()
        if active is None:
            # Not ready (loading, or its config failed) is unavailability, not overload.
            raise BackendUnavailable(f"endpoint {self.name!r} is not ready yet", retry_after=1.0)
        return active, active.pick()


class GatewayState:
    """Every endpoint this worker serves, kept in step with the database."""

    def __init__(
        self,
        db: Database,
        registry: Registry,
        features: Any,
        gateway_id: str,
    ) -> None:
        self.db = db
        self.registry = registry
        self.features = features
        self.gateway_id = gateway_id
        self.endpoints: dict[str, EndpointRuntime] = {}
        self.refreshed_at = utcnow()
        self._trips: list[tuple[str, int, str]] = []  # (endpoint, config, alarm + reason)
        self.cold_start_observer: Callable[[VariantRuntime, float], None] | None = None

    # -- following the database -------------------------------------------------------

    def refresh(self) -> bool:
        """Apply every endpoint change since the last call; True if anything changed."""
        with self.db.session() as session:
            rows = {
                r.name: (
                    r.generation,
                    r.status,
                    r.active_version,
                    r.target_version,
                    r.target_percent,
                )
                for r in session.scalars(select(EndpointRow))
            }
        changed = False
        for name in list(self.endpoints):
            row = rows.get(name)
            if row is None or row[1] == EndpointStatus.DELETING.value:
                del self.endpoints[name]
                self._forget(name)
                changed = True
        for name, (generation, status, active, target, percent) in rows.items():
            if status == EndpointStatus.DELETING.value:
                continue
            current = self.endpoints.get(name)
            if current is not None and current.generation == generation:
                continue
            self.endpoints[name] = self._build(name, generation, status, active, target, percent)
            changed = True
        self.refreshed_at = utcnow()
        return changed

    def _configs_in_use(self) -> dict[tuple[str, int], ConfigRuntime]:
        out = {}
        for ep in self.endpoints.values():
            for config in (ep.active, ep.target):
                if config is not None:
                    out[(ep.name, config.version)] = config
        return out

    def _loaded_models(self) -> dict[tuple[str, str, int], LoadedModel]:
        """The models loaded by configs in use, by (workspace, model, version): one copy
        of a version however many endpoints of its workspace serve it."""
        out = {}
        for (endpoint, _), config in self._configs_in_use().items():
            workspace = split_scoped(endpoint)[0]
            for variant in [*config.variants, *config.shadows]:
                if variant.model is not None:
                    out[(workspace, variant.model_name, variant.model_version)] = variant.model
        return out

    def _build(
        self,
        name: str,
        generation: int,
        status: str,
        active: int | None,
        target: int | None,
        percent: float,
    ) -> EndpointRuntime:
        in_use = self._configs_in_use()
        configs: dict[int, ConfigRuntime] = {}
        for version in (v for v in (active, target) if v is not None):
            existing = in_use.get((name, version))
            configs[version] = (
                existing if existing is not None else self._load_config(name, version)
            )
        deploying = configs.get(target) if target is not None else None
        watched = deploying is not None and bool(deploying.spec.deployment.alarms)
        return EndpointRuntime(
            name=name,
            generation=generation,
            status=status,
            active=configs.get(active) if active is not None else None,
            target=deploying,
            target_percent=percent,
            canary=Counters() if watched else None,
        )

    def _load_config(self, name: str, version: int) -> ConfigRuntime:
        with self.db.session() as session:
            row = session.get(EndpointConfigRow, (name, version))
            assert row is not None
            spec = EndpointSpec.model_validate(row.spec)
        # An endpoint serves its workspace's models and reads its workspace's features.
        workspace = split_scoped(name)[0]
        registry = self.registry.in_workspace(workspace)
        self._report(name, version, "loading", "")
        loaded = self._loaded_models()
        variants: list[VariantRuntime] = []
        shadows: list[VariantRuntime] = []
        error = ""
        idle = spec.serverless.idle_timeout_seconds if spec.serverless else None
        for target_list, specs in ((variants, spec.variants), (shadows, spec.shadow_variants)):
            for variant_spec in specs:
                assert variant_spec.version is not None
                key = (workspace, variant_spec.model_name, variant_spec.version)
                model = loaded.get(key)
                if model is None and not error:
                    try:
                        model = load_model(registry, *key[1:])
                        loaded[key] = model
                    except Exception as exc:
                        error = f"{variant_spec.name}: {type(exc).__name__}: {exc}"
                        log.warning("endpoint %s config %s: %s", name, version, error)
                runtime = VariantRuntime(
                    variant_spec, version, model, serverless_idle=idle, registry=registry
                )
                if spec.multi_model is not None:
                    runtime.multi = MultiModelCache(
                        registry,
                        spec.multi_model.models,
                        spec.multi_model.memory_budget_mb * 1024 * 1024,
                        spec.environment,
                    )
                target_list.append(runtime)
        enricher = None
        if spec.enrichment is not None and not error:
            try:
                # A feature view is loaded and compiled here, once per config: a request
                # reads the online store and nothing else.
                enricher = build_enricher(
                    spec.enrichment, self.features.in_workspace(workspace), self.db
                )
            except Exception as exc:
                error = f"enrichment: {type(exc).__name__}: {exc}"
        ready = not error
        self._report(name, version, "ready" if ready else "failed", error)
        return ConfigRuntime(version, spec, variants, shadows, enricher, ready, error)

    def trip(self, endpoint: str, config: ConfigRuntime, alarm: str, reason: str) -> None:
        """Stop routing to ``config`` here at once; the report waits for the housekeeping
        thread (no database write on the request path)."""
        if config.tripped is None:
            config.tripped = reason
            self._trips.append((endpoint, config.version, f"{alarm}\n{reason}"))

    def report_trips(self) -> None:
        """Tell the deployment controller (a ``tripped`` model row) which configs tripped."""
        while self._trips:
            endpoint, version, detail = self._trips[0]
            self._report(endpoint, version, TRIPPED, detail)
            self._trips.pop(0)

    def _report(self, endpoint: str, version: int, state: str, error: str) -> None:
        with self.db.write() as session:
            row = session.get(GatewayModelRow, (self.gateway_id, endpoint, version))
            if row is None:
                session.add(
                    GatewayModelRow(
                        gateway_id=self.gateway_id,
                        endpoint=endpoint,
                        config_version=version,
                        state=state,
                        error=error[:4000],
                        updated_at=utcnow(),
                    )
                )
            else:
                row.state, row.error, row.updated_at = state, error[:4000], utcnow()

    def _forget(self, endpoint: str) -> None:
        with self.db.write() as session:
            session.execute(
                delete(GatewayModelRow).where(
                    GatewayModelRow.gateway_id == self.gateway_id,
                    GatewayModelRow.endpoint == endpoint,
                )
            )

    # -- models on demand ---------------------------------------------------------------

    async def model_for(
        self, config: ConfigRuntime, variant: VariantRuntime, target_model: str | None
    ) -> LoadedModel:
        """The model answering this request, loading it first when it is not resident."""
        loop = asyncio.get_running_loop()
        if variant.multi is not None:
            cache = variant.multi
            if target_model is None:
                if variant.model is None:
                    raise InvalidInput(
                        "a multi-model endpoint needs the X-Slipway-Target-Model header",
                        field="X-Slipway-Target-Model",
                    )
                return variant.model
            key = await loop.run_in_executor(None, cache.resolve, target_model)
            model = cache.get(key)
            if model is None:
                started = time.perf_counter()
                try:
                    model = await loop.run_in_executor(None, cache.load, key)
                except (NotFound, Forbidden):
                    raise
                self._cold(variant, started)
            model.last_used = time.monotonic()
            return model
        model = variant.model
        if model is None:
            model = await self._load_on_demand(variant)
        model.last_used = time.monotonic()
        return model

    async def _load_on_demand(self, variant: VariantRuntime) -> LoadedModel:
        with variant._lock:
            if variant.model is not None:
                return variant.model
            if variant._loading is None:
                started = time.perf_counter()
                future: Future[LoadedModel] = variant.executor.submit(
                    load_model,
                    variant.registry or self.registry,
                    variant.model_name,
                    variant.model_version,
                )

                def done(f: Future[LoadedModel]) -> None:
                    with variant._lock:
                        variant._loading = None
                        if f.exception() is None:
                            variant.model = f.result()
                            self._cold(variant, started)

                future.add_done_callback(done)
                variant._loading = future
            loading = variant._loading
        return await asyncio.wrap_future(loading)

    def _cold(self, variant: VariantRuntime, started: float) -> None:
        if self.cold_start_observer is not None:
            self.cold_start_observer(variant, (time.perf_counter() - started) * 1000)

    def unload_idle(self) -> list[str]:
        """Serverless variants idle past their timeout give their memory back."""
        now = time.monotonic()
        unloaded = []
        for ep in list(self.endpoints.values()):
            for config in (ep.active, ep.target):
                if config is None:
                    continue
                for variant in [*config.variants, *config.shadows]:
                    model = variant.model
                    idle = variant.serverless_idle
                    if model is None or idle is None:
                        continue
                    last = model.last_used or now
                    if model.last_used == 0.0:
                        model.last_used = now
                        continue
                    if now - last >= idle:
                        with variant._lock:
                            variant.model = None
                        unloaded.append(f"{ep.name}/{variant.name}")
        return unloaded
