"""Defining pipelines in Python: decorated steps composed in a pipeline function.

Calling a step inside a pipeline function does not run it: it records a node and returns
a :class:`StepRef` standing for its future output. Passing a ref to another step makes a
data dependency (an edge); ``ref["auc"]`` reaches into a dict output; comparing refs or
parameters (``metrics["auc"] >= min_auc``) builds a :class:`Cond` for ``with
condition(...)``, which gates every step created inside the block. Tracing the function
once yields the whole graph as plain JSON, listable without running anything.

    @step(retries=2)
    def prepare(rows: int) -> pd.DataFrame: ...

    @pipeline(name="train-delay")
    def train_delay(rows: int = 1000, min_auc: float = 0.75) -> None:
        data = prepare(rows)
        metrics = evaluate(train(data), data)
        with condition(metrics["auc"] >= min_auc):
            register(...)
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.core.specs import parse_spec
from slipway.pipelines.resources import StepOptions

P = ParamSpec("P")
R = TypeVar("R")
_OPS = {">", ">=", "<", "<=", "==", "!="}
_PARAM_TYPES = {int: "int", float: "float", str: "string", bool: "bool"}


def _encode(value: Any) -> dict[str, Any]:
    """An argument as graph JSON: a step output, a parameter, or a JSON constant."""
    if isinstance(value, StepRef):
        return {"ref": value.step, "path": list(value.path)}
    if isinstance(value, ParamRef):
        return {"param": value.name}
    if isinstance(value, Cond):
        raise InvalidInput("conditions gate steps with `with condition(...)`; they are not values")
    if isinstance(value, list | tuple):
        return {"list": [_encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": {str(k): _encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, bool | int | float | str):
        return {"value": value}
    kind = type(value).__name__
    raise InvalidInput(
        f"step arguments must be step outputs, parameters or JSON values, not {kind}"
    )


class _Comparable:
    def _cmp(self, op: str, other: Any) -> Cond:
        return Cond(_encode(self), op, _encode(other))

    def __ge__(self, other: Any) -> Cond:
        return self._cmp(">=", other)

    def __gt__(self, other: Any) -> Cond:
        return self._cmp(">", other)

    def __le__(self, other: Any) -> Cond:
        return self._cmp("<=", other)

    def __lt__(self, other: Any) -> Cond:
        return self._cmp("<", other)

    def __eq__(self, other: Any) -> Cond:  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other: Any) -> Cond:  # type: ignore[override]
        return self._cmp("!=", other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class StepRef(_Comparable):
    """The (future) output of a step, or a path into it."""

    step: str
    path: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> StepRef:
        return StepRef(self.step, (*self.path, str(key)))


@dataclass(frozen=True, eq=False)
class ParamRef(_Comparable):
    name: str


@dataclass(frozen=True)
class Cond:
    left: dict[str, Any]
    op: str
    right: dict[str, Any]

    def refs(self) -> set[str]:
        return {side["ref"] for side in (self.left, self.right) if "ref" in side}


@dataclass
class _Graph:
    name: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    gates: list[str] = field(default_factory=list)

    def add_step(
        self, fn: StepFunction[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> StepRef:
        base = fn.name
        name, n = base, 1
        while name in self.steps or name in self.conditions:
            n += 1
            name = f"{base}_{n}"
        try:
            bound = inspect.signature(fn.fn).bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {base!r}: {exc}", field=base) from None
        inputs = {key: _encode(value) for key, value in bound.arguments.items()}
        self.steps[name] = {
            "name": name,
            "function": fn.target,
            "inputs": inputs,
            "options": fn.options.model_dump(),
            "conditions": list(self.gates),
            "depends_on": sorted(_refs(inputs) | set(self.gates)),
        }
        return StepRef(name)


def _refs(encoded: Any) -> set[str]:
    if isinstance(encoded, dict):
        found = {encoded["ref"]} if "ref" in encoded else set()
        for value in encoded.values():
            found |= _refs(value)
        return found
    if isinstance(encoded, list):
        return set().union(*(_refs(v) for v in encoded)) if encoded else set()
    return set()


_current: contextvars.ContextVar[_Graph | None] = contextvars.ContextVar("graph", default=None)


class StepFunction(Generic[P, R]):
    """A decorated step: records a node inside a pipeline, runs plainly outside one."""

    def __init__(self, fn: Callable[P, R], options: StepOptions, name: str | None) -> None:
        self.fn = fn
        self.options = options
        self.name = validate_name(name or fn.__name__.replace("_", "-"), field="step")
        self.target = f"{fn.__module__}:{fn.__qualname__}"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        graph = _current.get()
        if graph is None:
            return self.fn(*args, **kwargs)
        return graph.add_step(self, args, kwargs)  # type: ignore[return-value]


@overload
def step(fn: Callable[P, R], /) -> StepFunction[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    backoff_seconds: float = 1.0,
    timeout_seconds: float | None = None,
    cache: bool = True,
    cpus: float | None = None,
    memory_mb: int | None = None,
    kind: str = "processing",
) -> Callable[[Callable[P, R]], StepFunction[P, R]]: ...


def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    backoff_seconds: float = 1.0,
    timeout_seconds: float | None = None,
    cache: bool = True,
    cpus: float | None = None,
    memory_mb: int | None = None,
    kind: str = "processing",
) -> Any:
    """Decorate a function as a pipeline step (usable bare or with options)."""
    if retries < 0 or backoff_seconds < 0:
        raise InvalidInput("retries and backoff must not be negative", field="retries")
    if cpus is not None and not cpus > 0:
        raise InvalidInput("cpus must be a positive number of cores", field="cpus")
    if memory_mb is not None and memory_mb < 64:
        raise InvalidInput("memory_mb must be at least 64", field="memory_mb")
    options = parse_spec(
        StepOptions,
        {
            "retries": retries,
            "backoff_seconds": backoff_seconds,
            "timeout_seconds": timeout_seconds,
            "cache": cache,
            "cpus": cpus,
            "memory_mb": memory_mb,
            "kind": kind,
        },
    )

    def wrap(inner: Callable[P, R]) -> StepFunction[P, R]:
        return StepFunction(inner, options, name)

    return wrap(fn) if fn is not None else wrap


@contextmanager
def condition(cond: Cond) -> Iterator[None]:
    """Gate the steps created in this block on ``cond`` (a condition step in the graph)."""
    graph = _current.get()
    if graph is None:
        raise InvalidInput("condition() is only meaningful inside a pipeline function")
    if not isinstance(cond, Cond) or cond.op not in _OPS:
        raise InvalidInput("condition() needs a comparison of step outputs or parameters")
    name = f"condition-{len(graph.conditions) + 1}"
    graph.conditions[name] = {
        "name": name,
        "left": cond.left,
        "op": cond.op,
        "right": cond.right,
        "conditions": list(graph.gates),
        "depends_on": sorted(cond.refs() | set(graph.gates)),
    }
    graph.gates.append(name)
    try:
        yield
    finally:
        graph.gates.pop()


@dataclass(frozen=True)
class PipelineFunction:
    """A decorated pipeline function and its name; :meth:`graph` traces it into plain
    JSON (:class:`slipway.pipelines.resources.PipelineGraph` types it)."""

    name: str
    fn: Callable[..., Any]

    @property
    def target(self) -> str:
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def parameters(self) -> dict[str, dict[str, Any]]:
        params: dict[str, dict[str, Any]] = {}
        for p in inspect.signature(self.fn).parameters.values():
            annotation = (
                p.annotation
                if not isinstance(p.annotation, str)
                else {"int": int, "float": float, "str": str, "bool": bool}.get(p.annotation)
            )
            kind = _PARAM_TYPES.get(annotation)  # type: ignore[arg-type]
            if kind is None:
                raise InvalidInput(
                    f"pipeline parameter {p.name!r} needs an int, float, str or bool annotation",
                    field=p.name,
                )
            default = None if p.default is inspect.Parameter.empty else p.default
            params[p.name] = {"type": kind, "default": default}
        return params

    def graph(self) -> dict[str, Any]:
        graph = _Graph(self.name)
        token = _current.set(graph)
        try:
            self.fn(**{name: ParamRef(name) for name in self.parameters()})
        finally:
            _current.reset(token)
        if not graph.steps:
            raise InvalidInput(f"pipeline {self.name!r} has no steps", field="pipeline")
        return {
            "name": self.name,
            "parameters": self.parameters(),
            "steps": graph.steps,
            "conditions": graph.conditions,
        }


def pipeline(name: str | None = None) -> Callable[[Callable[..., Any]], PipelineFunction]:
    """Decorate a function composing steps as a pipeline named ``name``."""

    def wrap(fn: Callable[..., Any]) -> PipelineFunction:
        return PipelineFunction(
            validate_name(name or fn.__name__.replace("_", "-"), field="pipeline"), fn
        )

    return wrap
