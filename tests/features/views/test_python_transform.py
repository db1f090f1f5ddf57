"""Python transformations: called once per batch with a DataFrame of the declared inputs,
their outputs checked against the declared names, lengths and types, every refusal
naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from slipway.core.errors import InvalidInput
from slipway.features.views.python_transform import PythonTransform
from tests.features.views import sample_functions

MODULE = "tests.features.views.sample_functions"
PREFIX = "transformations.2"


def transform(name: str, inputs: dict[str, str] | None = None, **outputs: str) -> PythonTransform:
    return PythonTransform(
        f"{MODULE}:{name}",
        inputs or {"x": "int"},
        outputs or {"doubled": "int"},
        field=PREFIX,
    )


def test_called_once_for_ten_thousand_rows() -> None:
    sample_functions.CALLS.clear()
    rows = 10_000
    x = pa.array(np.arange(rows))
    out = transform("counted")({"x": x}, rows)
    calls = sample_functions.CALLS
    assert calls == [rows]
    assert out["doubled"].type == pa.int64()
    assert out["doubled"].to_pylist() == [2 * i for i in range(rows)]


def test_a_dataframe_of_the_declared_inputs_converted_to_their_types() -> None:
    sample_functions.SEEN.clear()
    fn = transform("seen", {"x": "float", "label": "string"}, doubled="float")
    columns = {"x": pa.array([1, 2]), "label": pa.array(["a", None]), "unused": pa.array([0, 0])}
    assert fn(columns, 2)["doubled"].to_pylist() == [2.0, 4.0]
    (dtypes,) = sample_functions.SEEN
    assert list(dtypes) == ["x", "label"]  # the declared inputs only, in their order
    assert dtypes["x"] == "float64"


def test_the_function_may_change_its_frame() -> None:
    x = pa.array([1, 2, 3])
    assert transform("in_place")({"x": x}, 3)["doubled"].to_pylist() == [-1, 4, 6]
    assert x.to_pylist() == [1, 2, 3]


def test_outputs_as_a_dataframe() -> None:
    fn = PythonTransform(
        f"{MODULE}:fare_per_km",
        {"fare": "float", "distance": "float"},
        {"fare_per_km": "float"},
        field=PREFIX,
    )
    out = fn({"fare": pa.array([10.0, None]), "distance": pa.array([4.0, 2.0])}, 2)
    assert out["fare_per_km"].to_pylist() == [2.5, None]  # NaN from pandas: null


def test_outputs_as_a_mapping_of_arrays_lists_and_numpy() -> None:
    fn = transform(
        "two_outputs", {"a": "int", "b": "int"}, total="float", label="string", positive="bool"
    )
    out = fn({"a": pa.array([1, 20]), "b": pa.array([-3, 1])}, 2)
    assert out["total"].type == pa.float64()  # int -> float: a safe widening
    assert out["total"].to_pylist() == [-2.0, 21.0]
    assert out["label"].to_pylist() == ["small", "big"]
    assert out["positive"].to_pylist() == [False, True]


def test_whole_floats_become_ints_and_nan_becomes_null() -> None:
    out = transform("whole_floats")({"x": pa.array([1, None, 3])}, 3)
    assert out["doubled"].type == pa.int64()
    assert out["doubled"].to_pylist() == [2, None, 6]


def test_an_empty_batch_does_not_call_the_function() -> None:
    sample_functions.CALLS.clear()
    out = transform("counted")({"x": pa.array([], pa.int64())}, 0)
    calls = sample_functions.CALLS
    assert calls == []
    assert out["doubled"].type == pa.int64() and len(out["doubled"]) == 0


REFUSED: list[tuple[str, dict[str, str], str, str]] = [
    (
        "undeclared",
        {"doubled": "int"},
        f"{PREFIX}.outputs",
        "returned 'other', which is not a declared output",
    ),
    ("missing", {"doubled": "int"}, f"{PREFIX}.outputs", "returned 'something'"),
    (
        "counted",
        {"doubled": "int", "tripled": "int"},
        f"{PREFIX}.outputs.tripled",
        "did not return the declared output 'tripled'",
    ),
    (
        "short",
        {"doubled": "int"},
        f"{PREFIX}.outputs.doubled",
        "returned 2 values of 'doubled' for 3 rows",
    ),
    ("strings", {"doubled": "int"}, f"{PREFIX}.outputs.doubled", "is string, not int"),
    ("strings", {"doubled": "float"}, f"{PREFIX}.outputs.doubled", "is string, not float"),
    ("counted", {"doubled": "string"}, f"{PREFIX}.outputs.doubled", "is int, not string"),
    ("counted", {"doubled": "bool"}, f"{PREFIX}.outputs.doubled", "is int, not bool"),
    ("fractions", {"doubled": "int"}, f"{PREFIX}.outputs.doubled", "does not convert to int"),
    ("mixed", {"doubled": "int"}, f"{PREFIX}.outputs.doubled", "not one type"),
    (
        "a_scalar",
        {"doubled": "float"},
        f"{PREFIX}.outputs.doubled",
        "returned a float, not a column",
    ),
    (
        "a_list",
        {"doubled": "float"},
        f"{PREFIX}.python",
        "returned a list, not a DataFrame or a mapping",
    ),
]


@pytest.mark.parametrize(("name", "outputs", "field", "message"), REFUSED)
def test_wrong_outputs_are_refused_naming_the_output(
    name: str, outputs: dict[str, str], field: str, message: str
) -> None:
    fn = PythonTransform(f"{MODULE}:{name}", {"x": "int"}, outputs, field=PREFIX)
    with pytest.raises(InvalidInput) as caught:
        fn({"x": pa.array([1, 2, 3])}, 3)
    assert caught.value.field == field
    assert message in caught.value.message
    assert caught.value.message.startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "tests.features.views.no_such_module:f",
            "cannot import 'tests.features.views.no_such_module'",
        ),
        ("no_such_package_at_all:f", "cannot import 'no_such_package_at_all'"),
        (f"{MODULE}:no_such_function", f"{MODULE!r} has no 'no_such_function'"),
        (f"{MODULE}:NOT_CALLABLE", "is a int, not a function"),
        (
            "tests.features.views.broken_module:f",
            "importing 'tests.features.views.broken_module' failed: RuntimeError: broken at import",
        ),
        ("os.path", "is not module:function"),
    ],
)
def test_a_reference_that_does_not_resolve_is_refused_naming_python(
    target: str, message: str
) -> None:
    fn = PythonTransform(target, {"x": "int"}, {"y": "int"}, field=PREFIX)
    with pytest.raises(InvalidInput) as caught:
        fn.resolve()
    assert caught.value.field == f"{PREFIX}.python"
    assert message in caught.value.message


def test_without_a_prefix_fields_are_the_bare_names() -> None:
    fn = PythonTransform(f"{MODULE}:strings", {"x": "int"}, {"doubled": "int"})
    with pytest.raises(InvalidInput) as caught:
        fn({"x": pa.array([1])}, 1)
    assert caught.value.field == "outputs.doubled"
    with pytest.raises(InvalidInput) as unresolved:
        PythonTransform("nowhere_at_all:f", {"x": "int"}, {"y": "int"}).resolve()
    assert unresolved.value.field == "python"


def test_an_input_of_the_wrong_type_is_refused_naming_the_input() -> None:
    fn = transform("counted")
    with pytest.raises(InvalidInput) as caught:
        fn({"x": pa.array(["a"])}, 1)
    assert caught.value.field == f"{PREFIX}.inputs.x"


def test_the_functions_own_exceptions_propagate() -> None:
    with pytest.raises(RuntimeError, match="the function's own bug"):
        transform("broken")({"x": pa.array([1])}, 1)


def test_chunked_inputs(tmp_path: Any) -> None:
    sample_functions.CALLS.clear()
    out = transform("counted")({"x": pa.chunked_array([[1, 2], [3]])}, 3)
    assert out["doubled"].to_pylist() == [2, 4, 6]
    calls = sample_functions.CALLS
    assert calls == [3]
