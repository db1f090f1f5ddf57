"""Pipelines, their schedules and their event triggers as spec documents."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slipway.apply.kinds.base import Kind, Live, Platform, Reference, dump
from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.events.resources import TriggerSpec
from slipway.pipelines.definition import define
from slipway.pipelines.resources import Pipeline, PipelineDefinition, ScheduleSpec


class PipelineDocument(BaseModel):
    """``kind: Pipeline`` — a pipeline is Python; its document names the ``@pipeline``
    function by module path (``churn.pipeline:training``), imported from the directory
    apply runs in, as ``python -m`` would."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    definition: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="module:attribute of the @pipeline function",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return validate_name(value, field="name")
        except InvalidInput as exc:
            raise ValueError(exc.message) from None


def _graph(definition: PipelineDefinition | Pipeline) -> dict[str, Any]:
    """The graph as compared: its steps (with their code's digest), conditions and
    parameters; not where the code lives, which differs between a local registration
    (source folders) and a remote one (uploaded bundles) of the same code."""
    graph = dump(definition.graph)
    graph.pop("code_paths", None)
    return {"target": definition.target, "graph": graph}


class PipelineKind(Kind):
    """Registered (or re-registered) from its Python definition; never pruned, since
    executions refer to it."""

    name = "Pipeline"
    model = PipelineDocument
    prunable = False

    def __init__(self) -> None:
        self._defined: dict[str, PipelineDefinition] = {}

    def definition(self, spec: BaseModel) -> PipelineDefinition:
        assert isinstance(spec, PipelineDocument)
        found = self._defined.get(spec.definition)
        if found is None:
            found = self._defined[spec.definition] = define(spec.definition)
        if found.name != spec.name:
            raise InvalidInput(
                f"{spec.definition} defines pipeline {found.name!r}, not {spec.name!r}",
                field="name",
            )
        return found

    def desired(self, spec: BaseModel, platform: Platform) -> dict[str, Any]:
        return _graph(self.definition(spec))

    def live_all(self, platform: Platform) -> dict[str, Live]:
        return {p.name: Live(_graph(p)) for p in platform.pipelines.pipelines()}

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.pipelines.register(self.definition(spec), actor=actor)

    update = create

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        raise InvalidInput(f"pipeline {name!r} cannot be deleted: executions refer to it")

    def export(self, live: Live) -> dict[str, Any]:
        return {"definition": live.spec["target"]}


class ScheduleKind(Kind):
    """``kind: Schedule`` — the fields of a schedule; an update keeps its firings."""

    name = "Schedule"
    model = ScheduleSpec

    def desired(self, spec: BaseModel, platform: Platform) -> dict[str, Any]:
        # ``start_at`` says where a new schedule starts; the platform does not keep it.
        values = dump(spec)
        values.pop("start_at", None)
        return values

    def references(self, spec: BaseModel) -> list[Reference]:
        assert isinstance(spec, ScheduleSpec)
        return [Reference(("pipeline",), "Pipeline", spec.pipeline)]

    def live_all(self, platform: Platform) -> dict[str, Live]:
        fields = ("name", "pipeline", "cron", "timezone", "parameters", "catchup")
        return {s.name: Live({f: dump(s)[f] for f in fields}) for s in platform.schedules.all()}

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        assert isinstance(spec, ScheduleSpec)
        platform.schedules.create(
            spec.name,
            spec.pipeline,
            spec.cron,
            timezone=spec.timezone,
            parameters=spec.parameters,
            catchup=spec.catchup,
            start_at=spec.start_at,
            actor=actor,
        )

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.schedules.update(spec, actor=actor)

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.schedules.delete(name, actor=actor)


class TriggerKind(Kind):
    """``kind: Trigger`` — the fields of an event trigger; an update keeps its count."""

    name = "Trigger"
    model = TriggerSpec

    def references(self, spec: BaseModel) -> list[Reference]:
        assert isinstance(spec, TriggerSpec)
        return [Reference(("pipeline",), "Pipeline", spec.pipeline)]

    def live_all(self, platform: Platform) -> dict[str, Live]:
        fields = TriggerSpec.model_fields
        return {
            t.name: Live({f: v for f, v in dump(t).items() if f in fields})
            for t in platform.triggers.all()
        }

    def create(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        assert isinstance(spec, TriggerSpec)
        platform.triggers.create(
            spec.name,
            spec.pipeline,
            spec.event_type,
            filters=spec.filters,
            parameter_mapping=spec.parameter_mapping,
            debounce_seconds=spec.debounce_seconds,
            actor=actor,
        )

    def update(self, platform: Platform, spec: BaseModel, actor: str) -> None:
        platform.triggers.update(spec, actor=actor)

    def delete(self, platform: Platform, name: str, actor: str) -> None:
        platform.triggers.delete(name, actor=actor)
