"""Random arithmetic expressions over random float columns with nulls agree with a
pure-Python oracle that evaluates them row by row under the documented rules (nulls
propagate, Kleene logic, undefined results are null, IEEE overflow to infinity,
Python's flooring ``//`` and ``%``, NaN losing to numbers in min/max/clip)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from slipway.features.views.expressions import compile_expression

NAMES = ("x", "y", "z")
Tree = tuple[Any, ...]

# -- random expressions, as trees that render to text ----------------------------------

constants = st.sampled_from([0, 1, 2, -3, 0.0, 0.5, 2.5, -1.5, 1e300]).map(lambda v: ("const", v))
names = st.sampled_from(NAMES).map(lambda name: ("name", name))


def _numbers(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    return st.one_of(
        st.tuples(
            st.just("bin"),
            st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]),
            children,
            children,
        ),
        st.tuples(st.just("neg"), children),
        st.tuples(
            st.just("call1"),
            st.sampled_from(["abs", "floor", "ceil", "round", "sqrt", "exp", "log", "log1p"]),
            children,
        ),
        st.tuples(
            st.just("calln"),
            st.sampled_from(["min", "max", "coalesce"]),
            st.lists(children, min_size=2, max_size=3),
        ),
        st.tuples(st.just("clip"), children, children, children),
        st.tuples(st.just("if"), _conditions(children), children, children),
    )


def _conditions(numbers: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    simple = st.one_of(
        st.tuples(
            st.just("cmp"),
            st.lists(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), min_size=1, max_size=2),
            st.lists(numbers, min_size=3, max_size=3),
        ),
        st.tuples(st.just("is_null"), numbers),
    )
    return st.one_of(
        simple,
        st.tuples(st.sampled_from(["and", "or"]), simple, simple),
        st.tuples(st.just("not"), simple),
    )


expressions = st.recursive(st.one_of(names, constants), _numbers, max_leaves=8)


def render(tree: Tree) -> str:
    kind = tree[0]
    if kind == "const":
        return f"({tree[1]!r})"
    if kind == "name":
        return str(tree[1])
    if kind == "bin":
        return f"({render(tree[2])} {tree[1]} {render(tree[3])})"
    if kind == "neg":
        return f"(-{render(tree[1])})"
    if kind == "call1":
        return f"{tree[1]}({render(tree[2])})"
    if kind == "calln":
        return f"{tree[1]}({', '.join(render(arg) for arg in tree[2])})"
    if kind == "clip":
        return f"clip({render(tree[1])}, {render(tree[2])}, {render(tree[3])})"
    if kind == "if":
        return f"({render(tree[2])} if {render(tree[1])} else {render(tree[3])})"
    if kind == "cmp":
        ops, operands = tree[1], tree[2][: len(tree[1]) + 1]
        text = render(operands[0])
        for op, operand in zip(ops, operands[1:], strict=True):
            text += f" {op} {render(operand)}"
        return f"({text})"
    if kind == "is_null":
        return f"is_null({render(tree[1])})"
    if kind in ("and", "or"):
        return f"({render(tree[1])} {kind} {render(tree[2])})"
    assert kind == "not"
    return f"(not {render(tree[1])})"


# -- the oracle: one row, plain Python ------------------------------------------------


def _floor_like(function: Callable[[float], int]) -> Callable[[Any], Any]:
    def run(a: Any) -> Any:
        if isinstance(a, int):
            return a
        if math.isnan(a) or math.isinf(a):
            return a
        return math.copysign(float(function(a)), a)  # IEEE keeps the sign of zero

    return run


def _python_round(a: float) -> int:
    return round(a)


def _pow(a: float, b: float) -> Any:
    a, b = float(a), float(b)
    whole = math.isinf(b) or (not math.isnan(b) and b == math.floor(b))
    if (a == 0 and b < 0) or (a < 0 and not whole):
        return None
    try:
        return math.pow(a, b)
    except OverflowError:
        odd = whole and not math.isinf(b) and int(b) % 2 == 1
        return -math.inf if a < 0 and odd else math.inf


def _divide(a: Any, b: Any) -> Any:
    return None if b == 0 else float(a) / float(b)


def _flooring(python: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if b == 0:
            return None
        if isinstance(a, int) and isinstance(b, int):
            return python(a, b)
        return python(float(a), float(b))

    return run


def _exp(a: Any) -> float:
    try:
        return math.exp(a)
    except OverflowError:
        return math.inf


def _least(values: list[Any], pick: Callable[..., Any]) -> Any:
    numbers = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return pick(numbers) if numbers else math.nan


BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _divide,
    "//": _flooring(operator.floordiv),
    "%": _flooring(operator.mod),
    "**": _pow,
}
UNARY: dict[str, Callable[[Any], Any]] = {
    "abs": abs,
    "floor": _floor_like(math.floor),
    "ceil": _floor_like(math.ceil),
    "round": _floor_like(_python_round),
    "sqrt": lambda a: None if a < 0 else math.sqrt(a),
    "exp": _exp,
    "log": lambda a: None if a <= 0 else math.log(a),
    "log1p": lambda a: None if a <= -1 else math.log1p(a),
}
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def oracle(tree: Tree, row: dict[str, float | None]) -> Any:
    kind = tree[0]
    if kind == "const":
        return tree[1]
    if kind == "name":
        return row[tree[1]]
    if kind == "bin":
        a, b = oracle(tree[2], row), oracle(tree[3], row)
        return None if a is None or b is None else BINARY[tree[1]](a, b)
    if kind == "neg":
        a = oracle(tree[1], row)
        return None if a is None else -a
    if kind == "call1":
        a = oracle(tree[2], row)
        return None if a is None else UNARY[tree[1]](a)
    if kind == "calln":
        values = [oracle(arg, row) for arg in tree[2]]
        if tree[1] == "coalesce":
            return next((v for v in values if v is not None), None)
        if any(v is None for v in values):
            return None
        return _least(values, min if tree[1] == "min" else max)
    if kind == "clip":
        x, low, high = (oracle(part, row) for part in tree[1:])
        if x is None or low is None or high is None:
            return None
        return _least([_least([x, low], max), high], min)
    if kind == "if":
        condition = oracle(tree[1], row)
        if condition is None:
            return None
        return oracle(tree[2] if condition else tree[3], row)
    if kind == "cmp":
        ops, operands = tree[1], [oracle(part, row) for part in tree[2][: len(tree[1]) + 1]]
        result: bool | None = True
        for op, a, b in zip(ops, operands, operands[1:], strict=False):
            result = _and(result, None if a is None or b is None else COMPARE[op](a, b))
        return result
    if kind == "is_null":
        return oracle(tree[1], row) is None
    if kind == "and":
        return _and(oracle(tree[1], row), oracle(tree[2], row))
    if kind == "or":
        return _or(oracle(tree[1], row), oracle(tree[2], row))
    assert kind == "not"
    value = oracle(tree[1], row)
    return None if value is None else not value


# -- the property -------------------------------------------------------------------------

values = st.one_of(
    st.none(),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -2.5]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
tables = st.integers(min_value=1, max_value=12).flatmap(
    lambda size: st.fixed_dictionaries(
        {name: st.lists(values, min_size=size, max_size=size) for name in NAMES}
    )
)


def _agree(got: Any, expected: Any) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    if math.isnan(got) or math.isnan(expected):
        return math.isnan(got) and math.isnan(expected)
    return bool(got == expected)


@settings(max_examples=300, deadline=None)
@given(tree=expressions, table=tables)
def test_random_expressions_agree_with_a_row_by_row_oracle(
    tree: Tree, table: dict[str, list[float | None]]
) -> None:
    text = render(tree)
    size = len(table["x"])
    columns = {name: pa.array(column, pa.float64()) for name, column in table.items()}
    got = compile_expression(text, field="e").evaluate(columns, length=size).to_pylist()
    rows = [{name: table[name][i] for name in NAMES} for i in range(size)]
    expected = [oracle(tree, row) for row in rows]
    for index, (left, right) in enumerate(zip(got, expected, strict=True)):
        assert _agree(left, right), f"{text} at row {rows[index]}: {left!r} != {right!r}"
