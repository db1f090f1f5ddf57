"""Baselines and monitors as spec documents."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from slipway.apply.kinds.base import Kind, Live, Platform, Reference, dump
from slipway.monitoring.resources import BaselineCreate
from slipway.monitoring.spec import MonitorSpec
from slipway.registry.models import parse_model_ref


def _model_name(ref: str | None) -> str | None:
    return None if ref is None else parse_model_ref(ref)[0]


class BaselineKind(Kind):
    """``kind: Baseline`` — built once from its source (statistics and suggested
    constraints are computed from the data then): a changed source is refused at plan
    time; give the new baseline a new name and point monitors at it."""

    name = "Baseline"
    model = BaselineCreate
    immutable = True

    def desired(self, spec: BaseModel, platform: Platform) -> dict[str, Any]:
        assert isinstance(spec, BaselineCreate)
        return {"name": spec.name, "source": spec.source, "model": _model_name(spec.model)}

    def references(self, spec: BaseModel) -> list[Reference]:
        assert isinstance(spec, BaselineCreate)
        if spec.model is None:
            return []
        name, version = parse_model_ref(spec.model)
        return [Reference(("model",), "Model", name, None if version is None else str(version))]

    def live_all(self, platform: Platform) -> dict[str, Live]:
        return {
            b.name: Live(
                {"name": b.name, "source": b.source, "model": _model_name(b.model)},
                document={"name": b.name, "source": b.source}
                | ({"model": b.model} if b.model else {}),
            )
            for b in platform.baselines.list()
        }

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        assert isinstance(spec, BaselineCreate)
        platform.baselines.create(
            spec.name,
            source=spec.source,
            model=spec.model,
            columns=spec.columns,
            prediction_column=spec.prediction_column,
            actor=actor,
        )

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        raise AssertionError("baselines are immutable: plan refuses a changed one")

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.baselines.delete(name, actor=actor)

    def export(self, live: Live) -> dict[str, Any]:
        assert live.document is not None
        return dict(live.document)


class MonitorKind(Kind):
    """``kind: Monitor`` — a monitor spec; an update keeps its runs and enabled state."""

    name = "Monitor"
    model = MonitorSpec
    renamed = {"type": "kind"}  # noqa: RUF012 (a class constant)

    def references(self, spec: BaseModel) -> list[Reference]:
        assert isinstance(spec, MonitorSpec)
        found = [Reference(("endpoint",), "Endpoint", spec.endpoint)]
        if spec.baseline is not None:
            found.append(Reference(("baseline",), "Baseline", spec.baseline))
        view = spec.skew.view_ref() if spec.skew is not None else None
        if view is not None:
            found.append(Reference(("skew", "feature_view"), "FeatureView", view[0]))
        return found

    def live_all(self, platform: Platform) -> dict[str, Live]:
        return {m.name: Live(dump(m.spec)) for m in platform.monitoring.list()}

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.monitoring.create(spec, actor=actor)

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.monitoring.update(spec, actor=actor)

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.monitoring.delete(name, actor=actor)
