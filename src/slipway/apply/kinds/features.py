"""Feature groups and feature views as spec documents.

A group is created, evolved compatibly, deleted. A view's every changed definition is a
new version (the versions before stay, for the models trained on them); it reads groups,
so plan checks that each group it names is declared or exists and has the features the
view reads, and apply creates groups before views.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from slipway.apply.kinds.base import Kind, Live, Platform, Reference, dump
from slipway.core.errors import Conflict
from slipway.features.definitions import FeatureGroup, check_evolution
from slipway.features.refs import FeatureRef
from slipway.features.views.spec import FeatureViewSpec


class FeatureGroupKind(Kind):
    """``kind: FeatureGroup`` — the fields of a feature group's definition. An update may
    only evolve it as the store allows (new nullable features, description, owner, tags,
    ttl): anything else is refused at plan time, before any change is made."""

    name = "FeatureGroup"
    model = FeatureGroup

    def members(self, values: dict[str, Any]) -> set[str]:
        """The group's features: what a view's reference to it may name."""
        return {feature["name"] for feature in values.get("features") or []}

    def live_all(self, platform: Platform) -> dict[str, Live]:
        return {g.spec.name: Live(dump(g.spec)) for g in platform.features.list_groups()}

    def check_update(self, live: Live, spec: BaseModel) -> str | None:
        assert isinstance(spec, FeatureGroup)
        try:
            check_evolution(FeatureGroup.model_validate(live.spec), spec)
        except Conflict as exc:
            return exc.message
        return None

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.features.create_group(spec, actor=actor)

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.features.update_group(spec, actor=actor)

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.features.delete_group(name, actor=actor)


class FeatureViewKind(Kind):
    """``kind: FeatureView`` — a view's definition (features, transformations, request
    fields). The live spec is the latest version's; a changed one is applied as the next
    version, as ``PUT /feature-views/{name}`` does, and models stay bound to the version
    they were trained on. Deleting one deletes every version."""

    name = "FeatureView"
    model = FeatureViewSpec

    def parse(self, values: dict[str, Any]) -> BaseModel:
        """The spec, its feature references checked here (the schema keeps them as
        text): a malformed one is a problem at its line, not a failure half way."""
        spec = super().parse(values)
        assert isinstance(spec, FeatureViewSpec)
        for index, text in enumerate(spec.features):
            FeatureRef.parse(text, field=f"features.{index}")
        return spec

    def references(self, spec: BaseModel) -> list[Reference]:
        """Each group the view reads, with the feature it reads of it (none for
        ``group:*`` and for a count window)."""
        assert isinstance(spec, FeatureViewSpec)
        found = []
        for index, text in enumerate(spec.features):
            ref = FeatureRef.parse(text, field=f"features.{index}")
            member = None if ref.every_feature else ref.feature
            found.append(Reference(("features", index), "FeatureGroup", ref.group, member=member))
        for index, transformation in enumerate(spec.transformations):
            window = transformation.window
            if window is not None:
                path = ("transformations", index, "window", "group")
                found.append(Reference(path, "FeatureGroup", window.group, member=window.column))
        return found

    def live_all(self, platform: Platform) -> dict[str, Live]:
        return {v.name: Live(dump(v.spec)) for v in platform.feature_views.list()}

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.feature_views.apply(spec, actor=actor)

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.feature_views.apply(spec, actor=actor)  # stored as the next version

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.feature_views.delete(name, actor=actor)
