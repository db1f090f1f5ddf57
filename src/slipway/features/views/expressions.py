"""The expression language of row-level transformations: small, safe, vectorized.

An expression such as ``clip(fare / distance, 0, 100)`` is parsed with :mod:`ast`
(``mode="eval"``) and checked against a strict whitelist — it is never given to ``eval``:
names (input columns), number, string, bool and ``None`` constants, ``+ - * / // % **``,
unary ``-``/``+``, ``not``, comparisons (``== != < <= > >=``, chained), ``and``/``or``,
``x if c else y``, and calls of :data:`FUNCTIONS`. Anything else is an
:class:`InvalidInput` naming the field and the column where it stands, and so is an
expression longer than 2,000 characters, of more than 200 parts (names, constants,
operators, calls) or nested more than 64 levels deep. The tree is compiled once into
nested closures over Arrow compute kernels (constant parts folded), so the same compiled
form evaluates one row (an online read) or millions (a training set): there is no
second, per-row implementation to drift from the vectorized one.

Semantics — SQL-like, decided once here, for both paths:

- **Nulls propagate**: an operator or function with a null operand gives null (except
  ``is_null`` and ``coalesce``). ``and``/``or``/``not`` are Kleene logic (``false and
  null`` is false, ``true or null`` is true). A null condition in ``x if c else y`` or
  ``where(c, x, y)`` gives null (not ``y``): unknown stays unknown; write
  ``coalesce(c, False)`` to pick ``y``. ``min``, ``max`` and ``clip`` give null when any
  argument is null. ``x == None`` is null; test with ``is_null(x)``.
- **Undefined results are null, never an error or an infinity**: division (``/``,
  ``//``, ``%``) by zero, ``sqrt`` of a negative number, ``log`` of zero or less,
  ``log1p`` of -1 or less, zero to a negative power, a negative number to a fractional
  power. Infinities only come from floats that overflow (``exp(1000)``, ``1e300 * 1e300``,
  ``10.0 ** 400``) or from infinite inputs, as IEEE arithmetic has it. NaN in a float
  input is a value, not a null (``is_null(nan)`` is false) and flows through arithmetic
  as IEEE says, except that ``min``, ``max`` and ``clip`` prefer any number to NaN.
- **Types** never depend on the data: ``/`` and ``**`` give float64 (ints are converted
  first, so one beyond 2**53 rounds), as SQL's division and POWER do. ``+ - * // %``,
  unary ``-`` and ``abs`` keep int64 for ints, and an int64 overflow is an error
  (:class:`InvalidInput`), as in SQL; int mixed with float gives float64; bools count as
  0/1 in arithmetic. ``//`` and ``%`` floor as Python does (``-7 // 2`` is -4, ``-7 % 2``
  is 1: ``%`` takes the divisor's sign). ``floor``, ``ceil`` and ``round`` keep the type
  (ints unchanged, floats stay float64); ``round`` rounds half to even, and
  ``round(x, n)`` scales by ``10**n`` (``round(2.675, 2)`` is 2.68, where Python says
  2.67). ``+`` joins two strings; ``length`` counts characters.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

import pyarrow as pa

from slipway.core.errors import InvalidInput
from slipway.features.views import vectorized
from slipway.features.views.vectorized import Refused, Value, arrow_type

MAX_LENGTH: Final = 2000
MAX_NODES: Final = 200
MAX_DEPTH: Final = 64

#: name -> (fewest arguments, most arguments or None for any number)
FUNCTIONS: Final[dict[str, tuple[int, int | None]]] = {
    "abs": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "round": (1, 2),
    "sqrt": (1, 1),
    "exp": (1, 1),
    "log": (1, 1),
    "log1p": (1, 1),
    "min": (2, None),
    "max": (2, None),
    "clip": (3, 3),
    "coalesce": (2, None),
    "is_null": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "length": (1, 1),
    "where": (3, 3),
}

_Run = Callable[[Mapping[str, Value]], Value]
_CAUGHT = (Refused, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)

_BINARY: Final[dict[type[ast.operator], str]] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}

_COMPARE: Final[dict[type[ast.cmpop], str]] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}

_REFUSED_OPERATORS: Final[dict[type[ast.AST], str]] = {
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}

_REFUSED_NODES: Final[dict[type[ast.AST], str]] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignments (:=) are not allowed",
    ast.Starred: "* arguments are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}


# -- the compiler ------------------------------------------------------------------


class _Node:
    """A compiled subexpression: ``run`` computes it; ``constant`` is its value when it
    reads no column (folded once, at compile time)."""

    __slots__ = ("constant", "run")

    def __init__(self, run: _Run, constant: Value = None) -> None:
        self.run = run
        self.constant = constant


def _constant(value: Value) -> _Node:
    return _Node(lambda columns: value, value)


class _Compiler:
    def __init__(self, field: str, body: str, prefix: str) -> None:
        self.field = field
        self.nodes = 0
        self.inputs: set[str] = set()
        self.lines = body.split("\n")
        # Leading blanks are cut before parsing; places are told in the text as written.
        self.line_shift = prefix.count("\n")
        self.column_shift = len(prefix) - (prefix.rfind("\n") + 1)

    def place(self, line: int, column: int) -> str:
        """``(column C)`` or ``(line L, column C)``, 1-based, for a 1-based line and a
        0-based column of the parsed text."""
        column += 1 + (self.column_shift if line == 1 else 0)
        line += self.line_shift
        return f"(column {column})" if line == 1 else f"(line {line}, column {column})"

    def characters(self, line: int, offset: int) -> int:
        """The column in characters of ``ast``'s ``offset`` in UTF-8 bytes."""
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return len(text.encode()[:offset].decode(errors="ignore"))

    def where(self, node: ast.AST) -> str:
        line = getattr(node, "lineno", 1)
        return self.place(line, self.characters(line, getattr(node, "col_offset", 0)))

    def after(self, node: ast.AST) -> str:
        """Where the operator (or ``.``, ``[``) after ``node`` stands: its first
        character past blanks and closing parentheses."""
        line = node.end_lineno or 1  # type: ignore[attr-defined]
        column = self.characters(line, node.end_col_offset or 0)  # type: ignore[attr-defined]
        while line <= len(self.lines):
            text = self.lines[line - 1]
            while column < len(text) and text[column] in " \t\r)\\":
                column += 1
            if column < len(text):
                break
            line, column = line + 1, 0
        return self.place(line, column)

    def refuse(self, message: str, place: str, hint: str = "") -> InvalidInput:
        return InvalidInput(f"{self.field}: {message} {place}{hint}", field=self.field)

    def failure(
        self, place: str, what: str
    ) -> Callable[[Exception, tuple[Value, ...]], InvalidInput]:
        """How an operator's refusal reads: the field, the operator, where it stands."""
        field = self.field

        def failed(exc: Exception, args: tuple[Value, ...]) -> InvalidInput:
            if isinstance(exc, Refused):
                message = str(exc)
            elif isinstance(exc, pa.ArrowInvalid) and "overflow" in str(exc):
                message = f"{what} overflows a 64-bit integer"
            elif isinstance(exc, pa.ArrowInvalid):
                message = f"{what} failed: {exc}"
            else:
                message = f"{what} does not apply to {', '.join(str(a.type) for a in args)}"
            return InvalidInput(f"{field}: {message} {place}", field=field)

        return failed

    def combine(
        self, place: str, what: str, compute: Callable[..., Value], parts: list[_Node]
    ) -> _Node:
        """A node computing ``compute`` over ``parts`` — folded now if they are all
        constants — whose refusals name the field and the place (a ``try`` costs nothing
        until it catches)."""
        failed = self.failure(place, what)
        if all(part.constant is not None for part in parts):
            args = tuple(part.constant for part in parts)
            try:
                return _constant(compute(*args))
            except _CAUGHT as exc:
                raise failed(exc, args) from None
        runs = [part.run for part in parts]
        if len(runs) == 1:
            (only,) = runs

            def one(columns: Mapping[str, Value]) -> Value:
                x = only(columns)
                try:
                    return compute(x)
                except _CAUGHT as exc:
                    raise failed(exc, (x,)) from None

            return _Node(one)
        if len(runs) == 2:
            first, second = runs

            def two(columns: Mapping[str, Value]) -> Value:
                x, y = first(columns), second(columns)
                try:
                    return compute(x, y)
                except _CAUGHT as exc:
                    raise failed(exc, (x, y)) from None

            return _Node(two)

        def many(columns: Mapping[str, Value]) -> Value:
            values = [run(columns) for run in runs]
            try:
                return compute(*values)
            except _CAUGHT as exc:
                raise failed(exc, tuple(values)) from None

        return _Node(many)

    def compile(self, node: ast.AST, depth: int) -> _Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.refuse(
                f"the expression is too long (more than {MAX_NODES} parts)", self.where(node)
            )
        if depth > MAX_DEPTH:
            raise self.refuse(
                f"the expression is nested too deep (more than {MAX_DEPTH} levels)",
                self.where(node),
            )
        below = depth + 1
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node, below)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, below)
        if isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            parts = [self.compile(value, below) for value in node.values]
            return self.combine(self.after(node.values[0]), word, vectorized.logic(word), parts)
        if isinstance(node, ast.Compare):
            return self.comparison(node, below)
        if isinstance(node, ast.IfExp):
            body, test, orelse = (
                self.compile(n, below) for n in (node.body, node.test, node.orelse)
            )
            place = self.after(node.body)
            return self.combine(place, "if/else", vectorized.if_else, [test, body, orelse])
        if isinstance(node, ast.Call):
            return self.call(node, below)
        if isinstance(node, ast.Attribute | ast.Subscript):
            while isinstance(node.value, ast.Attribute | ast.Subscript):
                node = node.value  # x.a.b: the first one, where reading stops
            raise self.refuse(_REFUSED_NODES[type(node)], self.after(node.value))
        message = _REFUSED_NODES.get(type(node), f"{type(node).__name__} is not allowed")
        raise self.refuse(message, self.where(node))

    def constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if value is not None and not isinstance(value, bool | int | float | str):
            kind = type(value).__name__
            raise self.refuse(f"{kind} constants are not allowed", self.where(node))
        try:
            return _constant(pa.scalar(value))
        except (OverflowError, pa.ArrowInvalid):
            message = f"{value} does not fit in a 64-bit integer"
            raise self.refuse(message, self.where(node)) from None

    def name(self, node: ast.Name) -> _Node:
        name = node.id
        if name in FUNCTIONS:
            raise self.refuse(f"{name} is a function: call it, as {name}(...)", self.where(node))
        self.inputs.add(name)
        return _Node(lambda columns: columns[name])

    def binary(self, node: ast.BinOp, depth: int) -> _Node:
        place = self.after(node.left)
        symbol = _BINARY.get(type(node.op))
        if symbol is None:
            refused = _REFUSED_OPERATORS[type(node.op)]
            raise self.refuse(f"operator {refused} is not allowed", place)
        parts = [self.compile(node.left, depth), self.compile(node.right, depth)]
        return self.combine(place, symbol, vectorized.OPERATORS[symbol], parts)

    def unary(self, node: ast.UnaryOp, depth: int) -> _Node:
        place = self.where(node)
        if isinstance(node.op, ast.Invert):
            raise self.refuse("operator ~ is not allowed", place, "; write not for a condition")
        symbol = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}[type(node.op)]
        operand = [self.compile(node.operand, depth)]
        return self.combine(place, symbol, vectorized.UNARY[symbol], operand)

    def comparison(self, node: ast.Compare, depth: int) -> _Node:
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            if type(op) not in _COMPARE:
                word = _REFUSED_OPERATORS[type(op)]
                hint = "; test for null with is_null(x)" if word in ("is", "is not") else ""
                place = self.after(operands[index])
                raise self.refuse(f"operator {word} is not allowed", place, hint)
        symbols = [_COMPARE[type(op)] for op in node.ops]
        parts = [self.compile(n, depth) for n in operands]
        compute = vectorized.comparison(symbols)
        return self.combine(self.after(node.left), " ".join(symbols), compute, parts)

    def call(self, node: ast.Call, depth: int) -> _Node:
        place = self.where(node)
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute | ast.Subscript):
                self.compile(node.func, depth)  # refused, at its first . or [
            if type(node.func) in _REFUSED_NODES:
                raise self.refuse(_REFUSED_NODES[type(node.func)], self.where(node.func))
            raise self.refuse("only the listed functions may be called, by name", place)
        name = node.func.id
        if name not in FUNCTIONS:
            allowed = ", ".join(sorted(FUNCTIONS))
            raise self.refuse(f"function {name!r} is not allowed", place, f"; allowed: {allowed}")
        if node.keywords:
            raise self.refuse(f"{name}() takes no keyword arguments", place)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.refuse(_REFUSED_NODES[ast.Starred], self.where(arg))
        fewest, most = FUNCTIONS[name]
        count = len(node.args)
        if count < fewest or (most is not None and count > most):
            if fewest == most:
                wanted = str(fewest)
            else:
                wanted = f"{fewest} or more" if most is None else f"{fewest} or {most}"
            raise self.refuse(f"{name}() takes {wanted} arguments, not {count}", place)
        parts = [self.compile(arg, depth) for arg in node.args]
        compute = vectorized.FUNCTIONS[name]
        if name == "round" and count == 2:
            digits = parts.pop().constant
            if (
                digits is None
                or not pa.types.is_integer(digits.type)
                or not -15 <= digits.as_py() <= 15
            ):
                raise self.refuse("round()'s digits must be a whole number from -15 to 15", place)
            compute = vectorized.rounding(digits.as_py())
        return self.combine(place, f"{name}()", compute, parts)


def _normalized(values: Any) -> Any:
    if isinstance(values, pa.ChunkedArray):
        return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values


class Expression:
    """A compiled expression: :meth:`evaluate` it on columns of any length."""

    __slots__ = ("_names", "_run", "field", "inputs", "text")

    def __init__(self, text: str, field: str, run: _Run, inputs: frozenset[str]) -> None:
        self.text = text
        self.field = field
        #: the column names the expression reads
        self.inputs = inputs
        self._run = run
        self._names = tuple(sorted(inputs))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, columns: Mapping[str, Any], *, length: int | None = None) -> Any:
        """The expression over ``columns`` (name -> pa.Array or pa.ChunkedArray, all of
        one length; others are ignored), as a pa.Array of that length (``length`` when
        it reads no column). :class:`InvalidInput` naming the field for a missing column,
        an operator that does not apply to the columns' types, or an int64 overflow."""
        values: dict[str, Any] = {}
        for name in self._names:
            try:
                column = values[name] = _normalized(columns[name])
            except KeyError:
                raise InvalidInput(
                    f"{self.field}: there is no column {name!r} to read", field=self.field
                ) from None
            if length is None:
                length = len(column)
            elif len(column) != length:
                raise ValueError(f"column {name!r} has {len(column)} rows, not {length}")
        if length is None:
            raise ValueError("an expression that reads no column needs the length")
        result = self._run(values)
        if isinstance(result, pa.Scalar):
            return pa.repeat(result, length)
        return result

    def output_type(self, input_types: Mapping[str, Any]) -> Any:
        """The Arrow type the expression computes from columns of ``input_types`` (Arrow
        types or declared type names), found by evaluating it on empty columns;
        :class:`InvalidInput` naming the field if it reads a column not there or applies
        an operator to a type it does not take."""
        empty = {}
        for name in self._names:
            if name not in input_types:
                raise InvalidInput(
                    f"{self.field}: reads {name!r}, which is not a column here", field=self.field
                )
            empty[name] = pa.array([], type=arrow_type(input_types[name]))
        return self.evaluate(empty, length=0).type


def compile_expression(text: str, *, field: str) -> Expression:
    """``text`` compiled, or :class:`InvalidInput` naming ``field`` (and where in the
    text) for anything outside the language, too long or too deep. Compiled forms are
    remembered (they are immutable): a view read online may ask again at every call."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{field}: an expression is needed", field=field)
    if len(text) > MAX_LENGTH:
        raise InvalidInput(
            f"{field}: the expression is too long ({len(text)} characters, at most {MAX_LENGTH})",
            field=field,
        )
    return _compiled(text, field)


@lru_cache(maxsize=1024)
def _compiled(text: str, field: str) -> Expression:
    body = text.lstrip()
    compiler = _Compiler(field, body, text[: len(text) - len(body)])
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        where = f" {compiler.place(exc.lineno or 1, exc.offset - 1)}" if exc.offset else ""
        raise InvalidInput(f"{field}: not an expression: {exc.msg}{where}", field=field) from None
    except (ValueError, RecursionError, MemoryError):  # NUL characters, parser limits
        raise InvalidInput(f"{field}: not an expression this language reads", field=field) from None
    node = compiler.compile(tree.body, 1)
    return Expression(text, field, node.run, frozenset(compiler.inputs))
