"""Endpoints and batch transform jobs as spec documents."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from slipway.apply.kinds.base import Kind, Live, Platform, Reference, dump
from slipway.batch.spec import BatchJobSpec
from slipway.core.errors import InvalidInput, NotFound
from slipway.features.refs import FeatureRef
from slipway.registry.lineage import Lineage
from slipway.registry.models import parse_model_ref
from slipway.serving.spec import EndpointSpec, parse_view_ref
from slipway.serving.states import UPDATABLE, EndpointStatus


def _model_reference(
    path: tuple[str | int, ...], ref: str, environment: str | None = None
) -> Reference:
    name, version = parse_model_ref(ref)
    return Reference(path, "Model", name, None if version is None else str(version), environment)


def _unpinned(spec: dict[str, Any]) -> dict[str, Any]:
    """An endpoint spec without the versions Slipway pins its model references to."""
    for key in ("variants", "shadow_variants"):
        for variant in spec.get(key) or []:
            variant.pop("version", None)
    return spec


class EndpointKind(Kind):
    """``kind: Endpoint`` — an endpoint spec. A change is an update of the endpoint: a new
    config rolled out with its ``deployment`` strategy and alarms, as
    ``slipway endpoints update`` does. The live spec is the config being rolled out, else
    the active one: a rolled-back deployment plans as a change again."""

    name = "Endpoint"
    model = EndpointSpec

    def __init__(self) -> None:
        self._resolved: dict[tuple[str, str], int] = {}
        self._trained: dict[tuple[str, int], dict[str, Any] | None] = {}

    def desired(self, spec: BaseModel, platform: Platform) -> dict[str, Any]:
        """The spec with each variant's model pinned as the platform would pin it now:
        an alias names the version it points at when the plan is made, so moving
        ``champion`` and applying again deploys the new champion (a stored config keeps
        the version it was given; only apply moves an endpoint)."""
        values = dump(spec)
        for key in ("variants", "shadow_variants"):
            for variant in values.get(key) or []:
                name, ref = parse_model_ref(variant["model"])
                cached = (name, str(ref))
                if cached not in self._resolved:
                    try:
                        self._resolved[cached] = int(platform.registry.resolve(name, ref))
                    except NotFound:
                        continue  # reported by the reference check
                variant["version"] = self._resolved[cached]
        enrichment = values.get("enrichment")
        if enrichment is not None and enrichment.get("feature_view") is not None:
            enrichment["feature_view"] = self._pinned_view(
                enrichment["feature_view"], values, platform
            )
        return values

    def _trained_on(self, platform: Platform, model: str, version: int) -> dict[str, Any] | None:
        """The feature view ``{name, version, digest}`` a model version was trained on."""
        key = (model, version)
        if key not in self._trained:
            found = platform.registry.get(model, version)
            self._trained[key] = Lineage.model_validate(found.lineage).feature_view
        return self._trained[key]

    def _pinned_view(self, text: str, values: dict[str, Any], platform: Platform) -> str:
        """The ``name:version`` the endpoint service will store for an enrichment naming
        a feature view (it pins one, so a bare name would plan as a change forever): the
        version named; else the one the served model versions were trained on; else the
        latest. What the service would refuse — models trained on another view, or on
        several versions of it — is a problem of the plan, naming the field."""
        field = "enrichment.feature_view"
        name, version = parse_view_ref(text, field=field)
        if version is not None:
            return f"{name}:{version}"
        trained: dict[str, int | None] = {}
        for key in ("variants", "shadow_variants"):
            for variant in values.get(key) or []:
                if variant.get("version") is None:
                    continue  # an unknown model: the reference check reports it
                model = parse_model_ref(variant["model"])[0]
                bound = self._trained_on(platform, model, variant["version"])
                if bound is None:
                    continue
                if bound["name"] != name:
                    raise InvalidInput(
                        f"variant {variant['name']!r} serves {model}:{variant['version']},"
                        f" trained on feature view {bound['name']!r}, not {name!r}",
                        field=field,
                    )
                trained[variant["name"]] = bound["version"]
        versions = set(trained.values())
        if len(versions) > 1:
            raise InvalidInput(
                f"the variants' models were trained on different versions of feature view"
                f" {name!r} ({', '.join(str(v) for v in sorted(versions, key=str))}): name"
                " the one to serve",
                field=field,
            )
        if versions:
            return f"{name}:{versions.pop()}"
        try:
            return f"{name}:{platform.feature_views.get(name).version}"
        except NotFound:
            return text  # declared in the files, made by this apply: the reference check

    def references(self, spec: BaseModel) -> list[Reference]:
        assert isinstance(spec, EndpointSpec)
        found = [
            _model_reference((key, i, "model"), variant.model, spec.environment)
            for key in ("variants", "shadow_variants")
            for i, variant in enumerate(getattr(spec, key))
        ]
        if spec.multi_model is not None:
            found += [
                Reference(("multi_model", "models", i), "Model", name)
                for i, name in enumerate(spec.multi_model.models)
            ]
        if spec.enrichment is not None:
            found += [
                Reference(("enrichment", "features", i), "FeatureGroup", FeatureRef.parse(f).group)
                for i, f in enumerate(spec.enrichment.features)
            ]
            view = spec.enrichment.view
            if view is not None:
                found.append(Reference(("enrichment", "feature_view"), "FeatureView", view[0]))
        return found

    def live_all(self, platform: Platform) -> dict[str, Live]:
        out: dict[str, Live] = {}
        for endpoint in platform.endpoints.list():
            if endpoint.status == EndpointStatus.DELETING:
                continue
            shown = endpoint.target or endpoint.active or endpoint.latest
            if shown is None:
                continue
            busy = (
                None
                if endpoint.status in UPDATABLE
                else f"endpoint {endpoint.name!r} is {endpoint.status.value}; wait until it is"
                " InService to change it"
            )
            out[endpoint.name] = Live(dump(shown.spec), busy)
        return out

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.endpoints.create(spec, actor=actor)

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        assert isinstance(spec, EndpointSpec)
        platform.endpoints.update(spec.name, spec, actor=actor)

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.endpoints.delete(name, actor=actor)

    def export(self, live: Live) -> dict[str, Any]:
        return super().export(Live(_unpinned(copy.deepcopy(live.spec)), live.busy))


class BatchJobKind(Kind):
    """``kind: BatchJob`` — submitted once when absent. A job is a record of work done:
    a changed spec is refused (name the new job anew), and jobs are never pruned."""

    name = "BatchJob"
    model = BatchJobSpec
    immutable = True
    prunable = False
    exported = False
    paged = True

    def references(self, spec: BaseModel) -> list[Reference]:
        assert isinstance(spec, BatchJobSpec)
        return [_model_reference(("model",), spec.model, spec.environment)]

    def live_all(self, platform: Platform) -> dict[str, Live]:
        # Jobs are many and paged; apply reads the ones the files name (live_one).
        return {}

    def live_one(self, platform: Platform, name: str) -> Live | None:
        try:
            return Live(dump(platform.batch.get(name).spec))
        except NotFound:
            return None

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.batch.submit(spec, actor=actor)

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        raise AssertionError("batch jobs are immutable: plan refuses a changed one")

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        raise AssertionError("batch jobs are never pruned")
