"""The row-level transformations of a feature view, as the one callable both paths use.

A training set (offline, millions of entity rows) and an online read (a few rows) both
hand :meth:`RowTransforms.apply` the columns they gathered — stored features, window
aggregates, request fields — as Arrow arrays, and get the view's expressions and Python
functions computed over all the rows at once, in the view's order: a transformation may
read a stored feature, a window's output, a request field or an earlier
transformation's output. Window aggregations are not row-level: the caller computes them
first (they need the group's events) and passes them in like stored features.

:meth:`RowTransforms.check` runs when a view is defined: every name read resolves, every
expression's computed type converts safely to its declared type (int to float yes, float
to int no), every Python input has the type its function declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from slipway.core.errors import InvalidInput
from slipway.features.views.expressions import Expression, compile_expression
from slipway.features.views.python_transform import PythonTransform
from slipway.features.views.spec import FeatureViewSpec
from slipway.features.views.vectorized import VALUE_TYPES, conform, safely_castable, type_name


@dataclass(frozen=True)
class _Step:
    field: str  # transformations.N
    outputs: dict[str, str]  # name -> declared type
    expression: Expression | None = None
    python: PythonTransform | None = None


def _columns(values: Any) -> Any:
    if isinstance(values, pa.ChunkedArray):
        return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values


class RowTransforms:
    """A view's expressions and Python transformations, compiled (and their functions
    imported, unless ``resolve_python`` is false) once."""

    def __init__(self, spec: FeatureViewSpec, *, resolve_python: bool = True) -> None:
        self.request_fields: dict[str, str] = dict(spec.request_fields)
        self._steps: list[_Step] = []
        made_by: dict[str, int] = {}
        for index, transformation in enumerate(spec.transformations):
            if transformation.window is None:
                for name in transformation.output_names:
                    made_by[name] = index
        needed: set[str] = set()
        for index, transformation in enumerate(spec.transformations):
            field = f"transformations.{index}"
            if transformation.expression is not None and transformation.type is not None:
                expression = compile_expression(
                    transformation.expression, field=f"{field}.expression"
                )
                declared: dict[str, str] = {transformation.name: transformation.type}
                step = _Step(field, declared, expression)
                reads = {name: f"{field}.expression" for name in sorted(expression.inputs)}
            elif transformation.python is not None and transformation.inputs is not None:
                outputs: dict[str, str] = dict(transformation.outputs or {})
                python = PythonTransform(
                    transformation.python, transformation.inputs, outputs, field=field
                )
                step = _Step(field, outputs, python=python)
                reads = {name: f"{field}.inputs.{name}" for name in transformation.inputs}
            else:
                continue  # a window: computed by the caller, before these
            for name, where in reads.items():
                if made_by.get(name, -1) >= index:
                    later = made_by[name]
                    what = "its own output" if later == index else f"transformations.{later}"
                    raise InvalidInput(
                        f"{where}: reads {name!r}, which {what} computes; a transformation"
                        " reads only columns computed before it",
                        field=where,
                    )
                if name not in made_by:
                    needed.add(name)
            self._steps.append(step)
        #: the columns the transformations read that they do not compute: stored
        #: features, window outputs, request fields
        self.inputs: frozenset[str] = frozenset(needed)
        #: the columns they compute, name -> declared type, in order
        self.outputs: dict[str, str] = {
            name: kind for step in self._steps for name, kind in step.outputs.items()
        }
        if resolve_python:
            for step in self._steps:
                if step.python is not None:
                    step.python.resolve()

    def __bool__(self) -> bool:
        return bool(self._steps)

    def check(self, input_types: Mapping[str, Any]) -> dict[str, str]:
        """Check the transformations against the columns available before them (name ->
        Arrow type or ``float``/``int``/``string``/``bool``; other type names stand for
        columns an expression cannot read) plus the view's request fields; answer the
        declared types of the columns they compute. :class:`InvalidInput` naming the
        field: ``transformations.N.type`` for a computed type that does not convert
        safely to the declared one, ``.expression`` or ``.inputs.<name>`` for a column
        read that is not there or has the wrong type, ``.name`` / ``.outputs.<name>``
        for an output that would replace an input column."""
        types: dict[str, Any] = {}
        opaque: dict[str, str] = {}
        for name, kind in input_types.items():
            if isinstance(kind, pa.DataType):
                types[name] = kind
            elif kind in VALUE_TYPES:
                types[name] = VALUE_TYPES[kind]
            else:
                opaque[name] = str(kind)
        types.update({name: VALUE_TYPES[kind] for name, kind in self.request_fields.items()})
        for step in self._steps:
            for name in step.outputs:
                if name in types or name in opaque:
                    where = (
                        f"{step.field}.name" if step.expression else f"{step.field}.outputs.{name}"
                    )
                    raise InvalidInput(
                        f"{where}: {name!r} is already a column of the view (a feature, a window"
                        " or a request field)",
                        field=where,
                    )
            if step.expression is not None:
                self._check_expression(step, step.expression, types, opaque)
            elif step.python is not None:
                for name, kind in step.python.inputs.items():
                    where = f"{step.field}.inputs.{name}"
                    if name not in types:
                        why = f"of type {opaque[name]}" if name in opaque else "not a column here"
                        raise InvalidInput(f"{where}: {name!r} is {why}", field=where)
                    if not safely_castable(types[name], kind):
                        raise InvalidInput(
                            f"{where}: {name!r} is {type_name(types[name])}, which does not convert"
                            f" safely to {kind}",
                            field=where,
                        )
            types.update({name: VALUE_TYPES[kind] for name, kind in step.outputs.items()})
        return dict(self.outputs)

    @staticmethod
    def _check_expression(
        step: _Step, expression: Expression, types: dict[str, Any], opaque: dict[str, str]
    ) -> None:
        for name in sorted(expression.inputs):
            if name in opaque:
                raise InvalidInput(
                    f"{expression.field}: reads {name!r}, a column of type {opaque[name]}, which"
                    " expressions do not take",
                    field=expression.field,
                )
        computed = expression.output_type(types)
        ((name, declared),) = step.outputs.items()
        if not safely_castable(computed, declared):
            where = f"{step.field}.type"
            raise InvalidInput(
                f"{where}: {name!r} computes {type_name(computed)}, which does not convert safely"
                f" to {declared}",
                field=where,
            )

    def apply(self, columns: Mapping[str, Any], *, length: int | None = None) -> dict[str, Any]:
        """``columns`` (name -> pa.Array or pa.ChunkedArray, all of one length) with the
        transformations' outputs added, each a pa.Array of its declared type. A column
        the transformations read that is missing is :class:`InvalidInput` naming it;
        request fields are converted to their declared types first (naming the field if
        one does not convert)."""
        for name in sorted(self.inputs):
            if name not in columns:
                raise InvalidInput(
                    f"{name!r} is missing: the view's transformations read it", field=name
                )
        values = dict(columns)
        for name in self.inputs:
            values[name] = _columns(values[name])
        for name, kind in self.request_fields.items():
            if name in values:
                what = f"request field {name!r}"
                values[name] = conform(values[name], kind, field=name, what=what, lenient=True)
        if length is None:
            length = len(next(iter(values.values()))) if values else None
        if length is None:
            raise ValueError("transformations over no column need the number of rows")
        for step in self._steps:
            if step.expression is not None:
                ((name, kind),) = step.outputs.items()
                computed = step.expression.evaluate(values, length=length)
                where = f"{step.field}.type"
                values[name] = conform(computed, kind, field=where, what=f"{name!r}")
            elif step.python is not None:
                values.update(step.python(values, length))
        return values
