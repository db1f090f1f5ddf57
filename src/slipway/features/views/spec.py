"""What a feature view is made of, as users write it (REST body, YAML, Python dict).

A view names stored features (``group:feature`` references) and transformations:
row-level ones written as an expression (:mod:`slipway.features.views.expressions`) or as
a vectorized Python function with declared inputs and outputs, and time-window
aggregations over a group's events. Every transformation's semantics has one
implementation, used by training sets and by online reads alike.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.features.definitions import validate_column

ValueType = Literal["float", "int", "string", "bool"]
AggregateFunction = Literal["count", "sum", "mean", "min", "max", "last"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_WINDOW = timedelta(days=366)


def parse_duration(value: object) -> timedelta:
    """``1h``, ``24h``, ``7d``, ``90m``, ``30s``, ``2w``, a number of seconds, or a
    timedelta: a positive duration of at most a year."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, bool):
        raise ValueError("a duration is like 1h, 24h or 7d")
    elif isinstance(value, int | float):
        duration = timedelta(seconds=float(value))
    elif isinstance(value, str) and (match := _DURATION.match(value.strip())):
        duration = timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    elif isinstance(value, str) and value.strip().upper().startswith(("P", "-P")):
        try:  # ISO 8601 (PT1H, P7D), as JSON writes a timedelta
            duration = TypeAdapter(timedelta).validate_python(value.strip())
        except ValidationError:
            raise ValueError(f"{value!r} is not a duration: write it like 1h, 24h or 7d") from None
    else:
        raise ValueError(f"{value!r} is not a duration: write it like 1h, 24h or 7d")
    if duration <= timedelta(0):
        raise ValueError("a window must be a positive duration")
    if duration > MAX_WINDOW:
        raise ValueError("a window may be at most 366 days")
    return duration


def format_duration(duration: timedelta) -> str:
    """``1h``, ``24h``, ``7d``, ``90m``: the largest unit that divides it exactly."""
    seconds = duration.total_seconds()
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def _column(value: str, field: str) -> str:
    try:
        return validate_column(value, field=field)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WindowSpec(_Spec):
    """An aggregation of a group's events over ``duration`` ending at the row's time:
    events of the row's key with ``t - duration <= event_time <= t``."""

    group: str
    column: str | None = Field(default=None, description="the feature aggregated; none for count")
    function: AggregateFunction
    duration: Annotated[timedelta, Field(description="1h, 24h, 7d ...")]

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        try:
            return validate_name(value, field="window.group")
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_serializer("duration")
    def _written(self, value: timedelta) -> str:
        return format_duration(value)

    @model_validator(mode="after")
    def _needs_column(self) -> WindowSpec:
        if self.function != "count" and self.column is None:
            raise ValueError(f"a {self.function} window needs the column it aggregates")
        if self.column is not None:
            _column(self.column, "window.column")
        return self


class Transformation(_Spec):
    """One output column: exactly one of ``expression``, ``python`` or ``window``."""

    name: str
    expression: str | None = Field(default=None, max_length=2000)
    type: ValueType | None = Field(default=None, description="the expression's output type")
    python: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function, called once per batch with a DataFrame of the inputs",
    )
    inputs: dict[str, ValueType] | None = None
    outputs: dict[str, ValueType] | None = None
    window: WindowSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _column(value, "transformations.name")

    @model_validator(mode="after")
    def _one_kind(self) -> Transformation:
        given = [k for k in ("expression", "python", "window") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of expression, python or window")
        if self.expression is not None and self.type is None:
            raise ValueError("an expression needs its output type (float, int, string or bool)")
        if self.python is not None and (not self.inputs or not self.outputs):
            raise ValueError("a python transformation declares its inputs and outputs")
        if self.python is None and (self.inputs or self.outputs):
            raise ValueError("inputs and outputs belong to a python transformation")
        return self

    @property
    def kind(self) -> Literal["expression", "python", "window"]:
        if self.expression is not None:
            return "expression"
        return "python" if self.python is not None else "window"

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs) if self.outputs else [self.name]


class FeatureViewSpec(_Spec):
    """A feature view's definition. ``request_fields`` are values the caller sends with
    each request (online) or each entity row (offline) that transformations may read."""

    name: str
    description: str = Field(default="", max_length=2000)
    features: list[str] = Field(default_factory=list, description="group:feature references")
    transformations: list[Transformation] = Field(default_factory=list)
    request_fields: dict[str, ValueType] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _view_name(cls, value: str) -> str:
        try:
            return validate_name(value, field="name")
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _outputs_unique(self) -> FeatureViewSpec:
        if not self.features and not self.transformations:
            raise ValueError("a feature view needs features or transformations")
        seen: set[str] = set(self.request_fields)
        for transformation in self.transformations:
            for name in transformation.output_names:
                if name in seen:
                    raise ValueError(f"column {name!r} is produced twice")
                seen.add(name)
        return self
