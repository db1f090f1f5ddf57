"""Row-level transformations written in Python: ``module:function``, vectorized.

The function is called once per batch — a training set's entity rows, an online read's
rows — never once per row, with a pandas DataFrame of its declared inputs in their
declared order, each converted to its declared type first, with the dtypes
:meth:`pyarrow.Table.to_pandas` gives (an int column with nulls arrives as float64 with
NaN, a bool column with nulls as objects, strings as pandas' string dtype). An empty
batch does not call it: its outputs are empty columns.

It returns a DataFrame, or a mapping of output name to a column (a pandas Series, a
NumPy array, a ``pa.Array``, a list), with exactly the declared outputs and one value
per row; each is converted to its declared type (NaN and None become null; floats that
are all whole numbers may become ints; nothing becomes a string or a bool but itself).

Refusals are :class:`InvalidInput` naming fields under the transformation's own field
``F`` (``transformations.N`` in a view; empty for a transformation on its own):
``F.python`` when the reference does not resolve to a callable or the result is not a
table, ``F.outputs.<name>`` for a missing, short, long or mistyped output, ``F.outputs``
for an output nobody declared, ``F.inputs.<name>`` for an input of the wrong type.
An exception the function itself raises propagates unchanged: it is the function's bug,
not the caller's input.

The reference is imported in this process with :func:`importlib.import_module`: which
modules a remote caller may name is decided before a view is stored (the confinement
rules of code references, :mod:`slipway.api.code`), not here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from slipway.core.errors import InvalidInput
from slipway.features.views.vectorized import VALUE_TYPES, conform


def _joined(*parts: str) -> str:
    return ".".join(part for part in parts if part)


class PythonTransform:
    """A vectorized Python function with declared inputs and outputs (name -> ``float``,
    ``int``, ``string`` or ``bool``)."""

    def __init__(
        self,
        target: str,
        inputs: Mapping[str, str],
        outputs: Mapping[str, str],
        *,
        field: str = "",
    ) -> None:
        self.target = target
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.field = field
        self._function: Callable[[pd.DataFrame], Any] | None = None

    def __repr__(self) -> str:
        return f"PythonTransform({self.target!r})"

    def resolve(self) -> Callable[[pd.DataFrame], Any]:
        """The function ``module:function`` names (imported once), or
        :class:`InvalidInput` naming ``F.python``."""
        if self._function is not None:
            return self._function
        field = _joined(self.field, "python")
        module_name, _, name = self.target.partition(":")
        if not module_name or not name:
            raise InvalidInput(f"{field}: {self.target!r} is not module:function", field=field)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise InvalidInput(
                f"{field}: cannot import {module_name!r}: {exc}", field=field
            ) from None
        except Exception as exc:  # the module's own code failed while importing
            raise InvalidInput(
                f"{field}: importing {module_name!r} failed: {type(exc).__name__}: {exc}",
                field=field,
            ) from None
        function: Callable[[pd.DataFrame], Any] | None = getattr(module, name, None)
        if function is None:
            raise InvalidInput(f"{field}: {module_name!r} has no {name!r}", field=field)
        if not callable(function):
            raise InvalidInput(
                f"{field}: {self.target!r} is a {type(function).__name__}, not a function",
                field=field,
            )
        self._function = function
        return self._function

    def __call__(self, columns: Mapping[str, Any], length: int) -> dict[str, Any]:
        """The outputs (name -> pa.Array of ``length``) computed from ``columns``, which
        hold every declared input (pa.Array or pa.ChunkedArray)."""
        function = self.resolve()
        if length == 0:
            return {name: pa.array([], VALUE_TYPES[kind]) for name, kind in self.outputs.items()}
        arrays = [
            conform(
                columns[name],
                kind,
                field=_joined(self.field, "inputs", name),
                what=f"input {name!r}",
            )
            for name, kind in self.inputs.items()
        ]
        # The dtypes Table.to_pandas gives, at a third of its cost for a one-row batch.
        names = list(self.inputs)
        frame = pd.DataFrame(
            {
                name: array.to_numpy(zero_copy_only=False)
                for name, array in zip(names, arrays, strict=True)
            }
        )
        return self._outputs(function(frame), length)

    def _outputs(self, result: Any, length: int) -> dict[str, Any]:
        if isinstance(result, pd.DataFrame):
            if result.columns.has_duplicates:
                raise InvalidInput(
                    f"{_joined(self.field, 'outputs')}: {self.target} returned a DataFrame"
                    " with a column named twice",
                    field=_joined(self.field, "outputs"),
                )
            values: dict[Any, Any] = {name: result[name] for name in result.columns}
        elif isinstance(result, Mapping):
            values = dict(result)
        else:
            field = _joined(self.field, "python")
            raise InvalidInput(
                f"{field}: {self.target} returned a {type(result).__name__}, not a DataFrame"
                " or a mapping of output name to column",
                field=field,
            )
        for name in values:
            if name not in self.outputs:
                field = _joined(self.field, "outputs")
                raise InvalidInput(
                    f"{field}: {self.target} returned {name!r}, which is not a declared output"
                    f" (declared: {', '.join(self.outputs)})",
                    field=field,
                )
        outputs: dict[str, Any] = {}
        for name, kind in self.outputs.items():
            field = _joined(self.field, "outputs", name)
            if name not in values:
                raise InvalidInput(
                    f"{field}: {self.target} did not return the declared output {name!r}",
                    field=field,
                )
            column = _column(values[name], field, self.target)
            if len(column) != length:
                raise InvalidInput(
                    f"{field}: {self.target} returned {len(column)} values of {name!r}"
                    f" for {length} rows",
                    field=field,
                )
            what = f"{field}: output {name!r} of {self.target}"
            outputs[name] = conform(column, kind, field=field, what=what, lenient=True)
        return outputs


def _column(value: Any, field: str, target: str) -> Any:
    """``value`` as a pa.Array; NaN (pandas' missing value) becomes null."""
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    if isinstance(value, pa.Array):
        return value
    try:
        if isinstance(value, pd.Series):
            return pa.Array.from_pandas(value)
        if isinstance(value, np.ndarray | list | tuple) and np.ndim(value) == 1:
            return pa.array(value, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"{field}: {target} returned values that are not one type: {exc}", field=field
        ) from None
    raise InvalidInput(
        f"{field}: {target} returned a {type(value).__name__}, not a column", field=field
    )
