"""Feature groups as spec documents: created, evolved compatibly, deleted."""

from __future__ import annotations

from pydantic import BaseModel

from slipway.apply.kinds.base import Kind, Live, Platform, dump
from slipway.core.errors import Conflict
from slipway.features.definitions import FeatureGroup, check_evolution


class FeatureGroupKind(Kind):
    """``kind: FeatureGroup`` — the fields of a feature group's definition. An update may
    only evolve it as the store allows (new nullable features, description, owner, tags,
    ttl): anything else is refused at plan time, before any change is made."""

    name = "FeatureGroup"
    model = FeatureGroup

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
