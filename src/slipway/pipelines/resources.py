"""The pipelines capability's resources and request bodies.

A registered :class:`Pipeline` carries its :class:`PipelineGraph`: the plain-data graph
the DSL traces (:meth:`slipway.pipelines.dsl.PipelineFunction.graph`), typed here so the
REST API can accept a pipeline defined on another machine (``PUT /pipelines/{name}``)
and check it without importing its code — the control plane never runs user code. An
:class:`Execution` is one run with its steps' states (:class:`StepRun`); a
:class:`Schedule` starts a pipeline on a cron expression, each firing a
:class:`ScheduleFire`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.core.resource import Resource
from slipway.pipelines.states import ExecutionState, StepState

ParameterType = Literal["int", "float", "string", "bool"]
Operator = Literal[">", ">=", "<", "<=", "==", "!="]
Catchup = Literal["none", "latest", "all"]

# How a step's argument is written in the graph: a step's output (and a path into it), a
# pipeline parameter, a list or dict of those, or a JSON constant.
_ENCODINGS = frozenset({"ref", "param", "list", "dict", "value"})


class _Definition(BaseModel):
    """Definitions a caller writes: unknown fields are errors naming them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterSpec(_Definition):
    """A pipeline parameter: its type and default (``None``: a value must be given)."""

    type: ParameterType
    default: bool | int | float | str | None = None


class StepOptions(_Definition):
    """How a step runs: retries with exponential backoff, a timeout, caching, resources."""

    retries: int = Field(default=0, ge=0, le=100)
    backoff_seconds: float = Field(default=1.0, ge=0)
    timeout_seconds: float | None = Field(default=None, gt=0)
    cache: StrictBool = True
    cpus: float | None = Field(default=None, gt=0, le=1024)
    memory_mb: int | None = Field(default=None, ge=64)
    kind: str = "processing"


class StepNode(_Definition):
    """A step of the graph: the function it calls (``module:qualname``, imported by the
    worker that runs it), its encoded arguments, and the nodes it waits for."""

    name: str
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
    inputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    options: StepOptions = Field(default_factory=StepOptions)
    conditions: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    code_digest: str | None = None


class ConditionNode(_Definition):
    """A condition: compares two encoded values; the steps it gates run when it holds."""

    name: str
    left: dict[str, Any]
    op: Operator
    right: dict[str, Any]
    conditions: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)


class PipelineGraph(_Definition):
    """A pipeline's graph as the DSL traces it, plus ``code_paths``: where the workers
    import the steps' code from: code bundles (``bundle:sha256:...``) or folders on the
    workers' machines."""

    name: str
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    steps: dict[str, StepNode]
    conditions: dict[str, ConditionNode] = Field(default_factory=dict)
    code_paths: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> PipelineGraph:
        check_graph(self)
        return self


def _check_encoded(value: Any, graph: PipelineGraph, field: str) -> set[str]:
    """The steps an encoded value refers to; InvalidInput at ``field`` if it is malformed."""
    if not isinstance(value, dict) or len(value.keys() & _ENCODINGS) != 1:
        raise InvalidInput(f"{field}: not an encoded value ({sorted(_ENCODINGS)})", field=field)
    if "ref" in value:
        if value["ref"] not in graph.steps:
            raise InvalidInput(f"{field}: refers to unknown step {value['ref']!r}", field=field)
        if not isinstance(value.get("path", []), list):
            raise InvalidInput(f"{field}: path must be a list", field=field)
        return {value["ref"]}
    if "param" in value:
        if value["param"] not in graph.parameters:
            raise InvalidInput(f"{field}: unknown parameter {value['param']!r}", field=field)
        return set()
    found: set[str] = set()
    if "list" in value:
        if not isinstance(value["list"], list):
            raise InvalidInput(f"{field}: list must be a list", field=field)
        for i, item in enumerate(value["list"]):
            found |= _check_encoded(item, graph, f"{field}.{i}")
    elif "dict" in value:
        if not isinstance(value["dict"], dict):
            raise InvalidInput(f"{field}: dict must be an object", field=field)
        for key, item in value["dict"].items():
            found |= _check_encoded(item, graph, f"{field}.{key}")
    return found


def check_graph(graph: PipelineGraph) -> None:
    """What the orchestrator relies on: names match keys, every reference and dependency
    names a node of this graph, and the graph has no cycle."""
    validate_name(graph.name, field="graph.name")
    if not graph.steps:
        raise InvalidInput(f"pipeline {graph.name!r} has no steps", field="graph.steps")
    for name in graph.parameters:
        if not name.isidentifier():
            raise InvalidInput(f"parameter {name!r} is not an identifier", field="parameters")
    nodes: dict[str, StepNode | ConditionNode] = {**graph.steps}
    for name, condition in graph.conditions.items():
        if name in nodes:
            raise InvalidInput(f"{name!r} is both a step and a condition", field="graph.conditions")
        nodes[name] = condition
    for name, node in nodes.items():
        kind = "steps" if name in graph.steps else "conditions"
        where = f"graph.{kind}.{name}"
        validate_name(name, field=where)
        if node.name != name:
            raise InvalidInput(f"{where}: its name is {node.name!r}", field=f"{where}.name")
        refs: set[str] = set()
        if isinstance(node, StepNode):
            for arg, encoded in node.inputs.items():
                refs |= _check_encoded(encoded, graph, f"{where}.inputs.{arg}")
        else:
            refs |= _check_encoded(node.left, graph, f"{where}.left")
            refs |= _check_encoded(node.right, graph, f"{where}.right")
        for gate in node.conditions:
            if gate not in graph.conditions:
                raise InvalidInput(
                    f"{where}: unknown condition {gate!r}", field=f"{where}.conditions"
                )
        unknown = set(node.depends_on) - nodes.keys()
        if unknown:
            raise InvalidInput(
                f"{where}: depends on unknown node(s) {sorted(unknown)}",
                field=f"{where}.depends_on",
            )
        missing = (refs | set(node.conditions)) - set(node.depends_on)
        if missing:
            raise InvalidInput(
                f"{where}: uses {sorted(missing)} without depending on them",
                field=f"{where}.depends_on",
            )
    _check_acyclic(nodes)


def _check_acyclic(nodes: dict[str, StepNode | ConditionNode]) -> None:
    """Kahn's algorithm: whatever cannot be ordered lies on (or after) a cycle."""
    waiting = {name: set(node.depends_on) for name, node in nodes.items()}
    ready = [name for name, deps in waiting.items() if not deps]
    while ready:
        done = ready.pop()
        for name, deps in waiting.items():
            if done in deps:
                deps.discard(done)
                if not deps:
                    ready.append(name)
    stuck = sorted(name for name, deps in waiting.items() if deps)
    if stuck:
        raise InvalidInput(f"the graph has a cycle among {stuck}", field="graph")


class PipelineDefinition(_Definition):
    """What registering a pipeline stores: its name, the ``module:qualname`` of its
    pipeline function, and its traced graph. Built next to the code
    (:func:`slipway.pipelines.definition.define`) and sent as the body of
    ``PUT /pipelines/{name}``."""

    name: str
    target: str
    graph: PipelineGraph

    @model_validator(mode="after")
    def _same_name(self) -> PipelineDefinition:
        validate_name(self.name, field="name")
        if self.graph.name != self.name:
            raise InvalidInput(
                f"graph.name {self.graph.name!r} is not the pipeline's name {self.name!r}",
                field="graph.name",
            )
        return self


class StartRequest(_Definition):
    """The body of ``POST /pipelines/{name}/executions``."""

    parameters: dict[str, Any] = Field(default_factory=dict)


class ScheduleSpec(_Definition):
    """The body of ``POST /schedules``: start ``pipeline`` on ``cron`` in ``timezone``."""

    name: str
    pipeline: str
    cron: str
    timezone: str = "UTC"
    parameters: dict[str, Any] = Field(default_factory=dict)
    catchup: Catchup = "latest"
    start_at: datetime | None = None


# -- resources -------------------------------------------------------------------------


class Pipeline(Resource):
    """A registered pipeline: where its code lives and its graph at registration."""

    table_fields: ClassVar[tuple[str, ...]] = ("name", "target", "digest", "updated_at")

    name: str
    target: str
    digest: str
    graph: PipelineGraph
    created_at: datetime
    updated_at: datetime


class StepRun(Resource):
    """One step (or condition) of one execution."""

    table_fields: ClassVar[tuple[str, ...]] = ("name", "state", "attempts", "depends_on", "error")

    name: str
    state: StepState
    attempts: int
    depends_on: list[str]
    cached_from: str | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Execution(Resource):
    """One run of a pipeline. ``steps`` (in graph order) is filled by ``describe`` and
    ``wait``; listings leave it empty."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "id",
        "pipeline",
        "state",
        "created_at",
        "finished_at",
    )

    id: str
    pipeline: str
    state: ExecutionState
    parameters: dict[str, Any]
    trigger: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    confined: bool = Field(
        default=False,
        description="started, registered or scheduled through the API: its built-in job"
        " steps confine their paths and code as the API does",
    )
    steps: list[StepRun] = Field(default_factory=list)

    def step(self, name: str) -> StepRun:
        """The step called ``name``."""
        for run in self.steps:
            if run.name == name:
                return run
        raise KeyError(name)


class Schedule(Resource):
    """A cron schedule that starts a pipeline; ``next_fire_at`` is when it fires next."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "pipeline",
        "cron",
        "timezone",
        "enabled",
        "next_fire_at",
        "last_fired_at",
    )

    name: str
    pipeline: str
    cron: str
    timezone: str
    parameters: dict[str, Any]
    catchup: Catchup
    enabled: bool
    next_fire_at: datetime
    last_fired_at: datetime | None = None
    created_at: datetime


class ScheduleFire(Resource):
    """One firing of a schedule and the execution it started."""

    schedule: str
    fire_time: datetime
    execution_id: str
    fired_at: datetime


__all__ = [
    "ConditionNode",
    "Execution",
    "ParameterSpec",
    "Pipeline",
    "PipelineDefinition",
    "PipelineGraph",
    "Schedule",
    "ScheduleFire",
    "ScheduleSpec",
    "StartRequest",
    "StepNode",
    "StepOptions",
    "StepRun",
    "check_graph",
]
