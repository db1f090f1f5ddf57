"""The operators and functions of the expression language over Arrow values.

:mod:`slipway.features.views.expressions` parses and checks an expression and compiles it
into calls of these; they hold its semantics (nulls, division by zero, types — said
there), each computed with Arrow kernels on whole columns (a ``pa.Array``; a
``pa.Scalar`` for a constant), whatever their length. Also here: the declared column
types of feature views and how a computed column is made one (:func:`conform`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slipway.core.errors import InvalidInput

#: The declared types of feature views' columns, as Arrow types.
VALUE_TYPES: Final[dict[str, Any]] = {
    "float": pa.float64(),
    "int": pa.int64(),
    "string": pa.string(),
    "bool": pa.bool_(),
}

# While evaluating, a value is a pa.Array, or a pa.Scalar for a constant.
Value = Any

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
_INT64_MIN: Final = -(2**63)
_F64: Final = pa.float64()
_I64: Final = pa.int64()
_BOOL: Final = pa.bool_()
_STRING: Final = pa.string()
_NULL_F64: Final = pa.scalar(None, _F64)
_ZERO: Final = pa.scalar(0.0)


class Refused(Exception):
    """A value of the wrong kind for an operator, found while evaluating (the caller
    says where)."""


# -- kinds and types ----------------------------------------------------------------

_KINDS: Final[dict[int, str]] = {
    **{t.id: "int" for t in (pa.int8(), pa.int16(), pa.int32(), _I64)},
    **{t.id: "int" for t in (pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64())},
    **{t.id: "float" for t in (pa.float16(), pa.float32(), _F64)},
    **{t.id: "string" for t in (_STRING, pa.large_string(), pa.string_view())},
    _BOOL.id: "bool",
    pa.null().id: "null",
}


def _kind(arrow_type: Any) -> str:
    return _KINDS.get(arrow_type.id, "other")


def arrow_type(value_type: object) -> Any:
    """The Arrow type of a declared type (``float``, ``int``, ``string``, ``bool``); an
    Arrow type is answered as it is."""
    if isinstance(value_type, pa.DataType):
        return value_type
    if isinstance(value_type, str) and value_type in VALUE_TYPES:
        return VALUE_TYPES[value_type]
    raise ValueError(f"{value_type!r} is not a column type (float, int, string or bool)")


# Which computed kinds a declared type takes without losing meaning: widening only.
_SAFE: Final[dict[str, frozenset[str]]] = {
    "float": frozenset({"float", "int", "bool", "null"}),
    "int": frozenset({"int", "bool", "null"}),
    "string": frozenset({"string", "null"}),
    "bool": frozenset({"bool", "null"}),
}


def type_name(arrow_type: Any) -> str:
    """``float``, ``int``, ``string`` or ``bool`` for the Arrow types of those kinds (as
    views declare types), else Arrow's own name."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    kind = _kind(arrow_type)
    return kind if kind in VALUE_TYPES else str(arrow_type)


def safely_castable(source: Any, declared: str) -> bool:
    """Whether values of Arrow type ``source`` may be stored as ``declared``: int to
    float may, float to int may not, nothing becomes a string or a bool but itself."""
    if pa.types.is_dictionary(source):
        source = source.value_type
    return _kind(source) in _SAFE[declared]


def conform(values: Any, declared: str, *, field: str, what: str, lenient: bool = False) -> Any:
    """``values`` (an array) as the Arrow type of ``declared``, or :class:`InvalidInput`
    naming ``field`` (``what`` says what the values are). Widening casts always apply;
    with ``lenient``, floats that are all whole numbers also become ints (values a
    caller sent as 3.0, a pandas int column made float by its missing values)."""
    target = VALUE_TYPES[declared]
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type == target:
        return values
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = _kind(values.type)
    try:
        if kind in _SAFE[declared]:  # int64 to float64 may round: accepted, as SQL does
            return values.cast(target, safe=not (declared == "float" and kind == "int"))
        if lenient and declared == "int" and kind == "float":
            return values.cast(target, safe=True)
    except _ARROW_ERRORS as exc:
        raise InvalidInput(f"{what} does not convert to {declared}: {exc}", field=field) from None
    raise InvalidInput(f"{what} is {type_name(values.type)}, not {declared}", field=field)


# -- kernels ---------------------------------------------------------------------------


def _kernel(name: str, options: Any = None) -> Callable[..., Value]:
    """Arrow's ``name`` kernel, called directly: pyarrow.compute's wrappers cost a few
    microseconds per call, which a one-row online read would pay at every operator."""
    call = pc.get_function(name).call
    if options is None:
        return lambda *args: call(list(args))
    return lambda *args: call(list(args), options)


_KEEP_NULLS = pc.ElementWiseAggregateOptions(skip_nulls=False)
_add = _kernel("add_checked")
_subtract = _kernel("subtract_checked")
_multiply = _kernel("multiply_checked")
_divide_kernel = _kernel("divide")
_power_kernel = _kernel("power")
_negate = _kernel("negate_checked")
_abs_kernel = _kernel("abs_checked")
_if_else_kernel = _kernel("if_else")
_and = _kernel("and_kleene")
_or = _kernel("or_kleene")
_invert = _kernel("invert")
_equal = _kernel("equal")
_not_equal = _kernel("not_equal")
_less = _kernel("less")
_less_equal = _kernel("less_equal")
_floor_kernel = _kernel("floor")
_least_kernel = _kernel("min_element_wise", _KEEP_NULLS)
_greatest_kernel = _kernel("max_element_wise", _KEEP_NULLS)
_coalesce_kernel = _kernel("coalesce")
_join = _kernel("binary_join_element_wise")
_EMPTY = pa.scalar("")


_PYTHON: Final = {_F64.id: float, _I64.id: int, _BOOL.id: bool, _STRING.id: str}
# Constants converted to another type, by (id of the constant, type id). The entry holds
# the constant itself, so its id cannot be reused while the entry lives; the identity
# check makes a stale entry harmless anyway.
_CONVERTED: dict[tuple[int, int], tuple[Value, Value]] = {}


def _cast(value: Value, target: Any) -> Value:
    """``value`` as ``target`` (a widening: bool to int, int to float, null to any).
    A constant is converted once and remembered: casting a scalar through Arrow costs
    more than the operation it feeds, and Arrow would otherwise cast it at every call."""
    if value.type == target:
        return value
    if not isinstance(value, pa.Scalar):
        safe = not (target.id == _F64.id and _kind(value.type) == "int")
        return value.cast(target, safe=safe)
    key = (id(value), target.id)
    hit = _CONVERTED.get(key)
    if hit is not None and hit[0] is value:
        return hit[1]
    if target.id in _PYTHON:
        plain = value.as_py()
        converted = pa.scalar(None if plain is None else _PYTHON[target.id](plain), target)
    else:
        converted = value.cast(target)
    if len(_CONVERTED) > 4096:
        _CONVERTED.clear()
    _CONVERTED[key] = (value, converted)
    return converted


def _numeric(value: Value, what: str) -> Value:
    kind = _kind(value.type)
    if kind == "bool":
        return _cast(value, _I64)
    if kind in ("int", "float", "null"):
        return value
    raise Refused(f"{what} needs numbers, not {value.type}")


def _as_float(value: Value, what: str) -> Value:
    return _cast(_numeric(value, what), _F64)


def _logical(value: Value, what: str) -> Value:
    kind = _kind(value.type)
    if kind == "bool" or kind == "null":
        return _cast(value, _BOOL)
    raise Refused(f"{what} needs true/false values, not {value.type}")


def _strings(value: Value, what: str) -> Value:
    kind = _kind(value.type)
    if kind == "string" or kind == "null":
        return _cast(value, _STRING) if kind == "null" else value
    raise Refused(f"{what} needs strings, not {value.type}")


def _unify(values: list[Value]) -> list[Value]:
    """Operands brought to one type where Arrow would not, or would slowly: ``None``
    takes the others' type, a bool among numbers counts as an int, and a constant
    among floats becomes a float once (Arrow would cast it again at every call)."""
    kinds = [_kind(v.type) for v in values]
    if "float" in kinds:
        target: Any = _F64
    elif "int" in kinds:
        target = _I64
    else:
        target = next((v.type for v, k in zip(values, kinds, strict=True) if k != "null"), None)
    if target is None:
        return values
    numeric = target.id in (_F64.id, _I64.id)
    return [
        _cast(v, target)
        if k == "null"
        or (numeric and k == "bool")
        or (target.id == _F64.id and k == "int" and isinstance(v, pa.Scalar))
        else v
        for v, k in zip(values, kinds, strict=True)
    ]


def _null_where(
    values: Value, bad: Callable[[Any], Any], arrow_bad: Callable[[Value], Value]
) -> Value:
    """``values`` (float64) with null where ``bad``. NumPy looks first: when no value is
    bad — nearly always — the answer is ``values`` itself, without two more kernels."""
    if isinstance(values, pa.Scalar):
        plain = values.as_py()
        return _NULL_F64 if plain is not None and bad(np.float64(plain)) else values
    if not bad(values.to_numpy(zero_copy_only=False)).any():  # nulls read as NaN
        return values
    return _if_else_kernel(arrow_bad(values), _NULL_F64, values)


# -- operators ---------------------------------------------------------------------


def _plus(a: Value, b: Value) -> Value:
    kinds = {_kind(a.type), _kind(b.type)}
    if "string" in kinds:
        if kinds <= {"string", "null"}:
            return _join(_strings(a, "+"), _strings(b, "+"), _EMPTY)
        raise Refused(f"+ cannot join {a.type} and {b.type}")
    return _add(*_unify([_numeric(a, "+"), _numeric(b, "+")]))


def _minus(a: Value, b: Value) -> Value:
    return _subtract(*_unify([_numeric(a, "-"), _numeric(b, "-")]))


def _times(a: Value, b: Value) -> Value:
    return _multiply(*_unify([_numeric(a, "*"), _numeric(b, "*")]))


def _divide(a: Value, b: Value) -> Value:
    divisor = _null_where(_as_float(b, "/"), lambda x: x == 0, lambda x: _equal(x, _ZERO))
    return _divide_kernel(_as_float(a, "/"), divisor)


def _as_numpy(value: Value, dtype: Any) -> tuple[Any, Any]:
    """(values, nulls) as NumPy, nulls filled with 1 so no operation warns about them."""
    if isinstance(value, pa.Scalar):
        valid = value.is_valid
        return np.asarray(value.as_py() if valid else 1, dtype=dtype), np.bool_(not valid)
    if value.null_count == 0:
        return value.to_numpy(zero_copy_only=False), np.bool_(False)
    nulls = value.is_null().to_numpy(zero_copy_only=False)
    return pc.fill_null(value, 1).to_numpy(zero_copy_only=False), nulls


def _flooring(a: Value, b: Value, what: str) -> Value:
    """``//`` or ``%`` by Python's rules, through NumPy, whose float floor division and
    remainder follow CPython's algorithm (Arrow has neither); null where the divisor is
    zero, and an int64 overflow (the smallest int // -1) refused."""
    a, b = _numeric(a, what), _numeric(b, what)
    integer = _kind(a.type) in ("int", "null") and _kind(b.type) in ("int", "null")
    target = _I64 if integer else _F64
    a, b = _cast(a, target), _cast(b, target)
    scalars = isinstance(a, pa.Scalar) and isinstance(b, pa.Scalar)
    if scalars:  # both constants: folded once, at compile time
        a = pa.array([a.as_py()], target)
    av, a_nulls = _as_numpy(a, np.int64 if integer else np.float64)
    bv, b_nulls = _as_numpy(b, np.int64 if integer else np.float64)
    zero = bv == 0
    nulls = a_nulls | b_nulls | zero
    bv = np.where(zero, 1, bv)
    if integer and what == "//" and np.any((av == _INT64_MIN) & (bv == -1) & ~nulls):
        raise pa.ArrowInvalid("overflow")
    with np.errstate(all="ignore"):
        out = np.floor_divide(av, bv) if what == "//" else np.remainder(av, bv)
    mask = np.broadcast_to(nulls, out.shape)
    result = pa.array(out, type=target, mask=np.array(mask) if mask.any() else None)
    return result[0] if scalars else result


def _floor_divide(a: Value, b: Value) -> Value:
    return _flooring(a, b, "//")


def _modulo(a: Value, b: Value) -> Value:
    return _flooring(a, b, "%")


def _power(a: Value, b: Value) -> Value:
    a, b = _as_float(a, "**"), _as_float(b, "**")
    if isinstance(b, pa.Scalar):  # x ** 2: the exponent decides the domain once
        exponent = b.as_py()
        if exponent is None:
            return _power_kernel(a, b)
        whole = abs(exponent) == float("inf") or exponent == exponent // 1
        if whole and exponent >= 0:
            return _power_kernel(a, b)
        if whole:
            return _power_kernel(_null_where(a, lambda x: x == 0, lambda x: _equal(x, _ZERO)), b)
        if exponent < 0:
            return _power_kernel(
                _null_where(a, lambda x: x <= 0, lambda x: _less_equal(x, _ZERO)), b
            )
        return _power_kernel(_null_where(a, lambda x: x < 0, lambda x: _less(x, _ZERO)), b)
    fractional = _not_equal(_floor_kernel(b), b)
    bad = _or(_and(_equal(a, _ZERO), _less(b, _ZERO)), _and(_less(a, _ZERO), fractional))
    return _power_kernel(_if_else_kernel(bad, _NULL_F64, a), b)


# -- functions ---------------------------------------------------------------------


def _abs(x: Value) -> Value:
    return _abs_kernel(_numeric(x, "abs"))


def _rounding(name: str) -> Callable[[Value], Value]:
    kernel = _kernel(name)

    def run(x: Value) -> Value:
        x = _numeric(x, name)
        return kernel(x) if _kind(x.type) == "float" else x

    return run


def _round(digits: int) -> Callable[[Value], Value]:
    kernel = _kernel("round", pc.RoundOptions(ndigits=digits, round_mode="half_to_even"))

    def run(x: Value) -> Value:
        x = _numeric(x, "round")
        return kernel(x) if _kind(x.type) == "float" or digits < 0 else x

    return run


def _float_function(
    name: str, kernel_name: str, lowest: float | None = None
) -> Callable[[Value], Value]:
    """``kernel_name`` of a float, null at or below ``lowest`` (below 0 for sqrt)."""
    kernel = _kernel(kernel_name)
    bound = pa.scalar(lowest if lowest is not None else 0.0)

    def run(x: Value) -> Value:
        x = _as_float(x, name)
        if lowest is None:
            return kernel(x)
        if name == "sqrt":
            return kernel(_null_where(x, lambda v: v < 0, lambda v: _less(v, bound)))
        return kernel(_null_where(x, lambda v: v <= lowest, lambda v: _less_equal(v, bound)))

    return run


def _least(*args: Value) -> Value:
    return _least_kernel(*_unify(list(args)))


def _greatest(*args: Value) -> Value:
    return _greatest_kernel(*_unify(list(args)))


def _clip(x: Value, low: Value, high: Value) -> Value:
    x, low, high = _unify([x, low, high])
    return _least_kernel(_greatest_kernel(x, low), high)


def _coalesce(*args: Value) -> Value:
    return _coalesce_kernel(*_unify(list(args)))


_is_null_kernel = _kernel("is_null")
_lower_kernel = _kernel("utf8_lower")
_upper_kernel = _kernel("utf8_upper")
_length_kernel = _kernel("utf8_length")


def _is_null(x: Value) -> Value:
    return _is_null_kernel(x)


def _lower(s: Value) -> Value:
    return _lower_kernel(_strings(s, "lower"))


def _upper(s: Value) -> Value:
    return _upper_kernel(_strings(s, "upper"))


def _length(s: Value) -> Value:
    return _cast(_length_kernel(_strings(s, "length")), _I64)


def _if_else(condition: Value, a: Value, b: Value) -> Value:
    return _if_else_kernel(_logical(condition, "the condition"), *_unify([a, b]))


#: The whitelisted functions, by name.
FUNCTIONS: Final[dict[str, Callable[..., Value]]] = {
    "abs": _abs,
    "floor": _rounding("floor"),
    "ceil": _rounding("ceil"),
    "round": _round(0),
    "sqrt": _float_function("sqrt", "sqrt", 0.0),
    "exp": _float_function("exp", "exp"),
    "log": _float_function("log", "ln", 0.0),
    "log1p": _float_function("log1p", "log1p", -1.0),
    "min": _least,
    "max": _greatest,
    "clip": _clip,
    "coalesce": _coalesce,
    "is_null": _is_null,
    "lower": _lower,
    "upper": _upper,
    "length": _length,
    "where": _if_else,
}


def _negative(x: Value) -> Value:
    return _negate(_numeric(x, "-"))


def _positive(x: Value) -> Value:
    return _numeric(x, "+")


def _not(x: Value) -> Value:
    return _invert(_logical(x, "not"))


def rounding(digits: int) -> Callable[[Value], Value]:
    """``round(x, digits)``."""
    return _round(digits)


def logic(word: str) -> Callable[..., Value]:
    """``and`` or ``or`` over two or more operands, Kleene's way."""
    kernel = _and if word == "and" else _or

    def run(*values: Value) -> Value:
        result = _logical(values[0], word)
        for value in values[1:]:
            result = kernel(result, _logical(value, word))
        return result

    return run


def comparison(symbols: list[str]) -> Callable[..., Value]:
    """A chain of comparisons (``0 < x <= 1``): each pair compared, the results and-ed,
    every operand computed once."""
    kernels = [COMPARISONS[symbol] for symbol in symbols]

    def run(*values: Value) -> Value:
        result = kernels[0](*_unify([values[0], values[1]]))
        for index in range(1, len(kernels)):
            result = _and(result, kernels[index](*_unify([values[index], values[index + 1]])))
        return result

    return run


#: Binary operators, by symbol.
OPERATORS: Final[dict[str, Callable[[Value, Value], Value]]] = {
    "+": _plus,
    "-": _minus,
    "*": _times,
    "/": _divide,
    "//": _floor_divide,
    "%": _modulo,
    "**": _power,
}

#: Unary operators, by symbol.
UNARY: Final[dict[str, Callable[[Value], Value]]] = {
    "-": _negative,
    "+": _positive,
    "not": _not,
}

COMPARISONS: Final[dict[str, Callable[..., Value]]] = {
    "==": _equal,
    "!=": _not_equal,
    "<": _less,
    "<=": _less_equal,
    ">": _kernel("greater"),
    ">=": _kernel("greater_equal"),
}

if_else = _if_else
