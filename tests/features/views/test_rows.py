"""A view's row-level transformations as the one callable training sets and online reads
share: in order (a transformation reads features, windows, request fields and earlier
outputs), checked at definition (declared types, names read), applied to any number of
rows with the same answers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from slipway.core.errors import InvalidInput
from slipway.features.views.rows import RowTransforms
from slipway.features.views.spec import FeatureViewSpec
from tests.features.views import sample_functions

MODULE = "tests.features.views.sample_functions"


def view(*transformations: dict[str, Any], **request_fields: str) -> FeatureViewSpec:
    return FeatureViewSpec.model_validate(
        {
            "name": "trips",
            "features": ["trips:fare"],
            "transformations": list(transformations),
            "request_fields": request_fields,
        }
    )


TRIPS = view(
    {"name": "trips_24h", "window": {"group": "trips", "function": "count", "duration": "24h"}},
    {"name": "fare_per_km", "expression": "clip(fare / distance, 0, 100)", "type": "float"},
    {"name": "busy", "expression": "trips_24h > 3 or fare_per_km > 50", "type": "bool"},
    {
        "name": "per_km_py",
        "python": f"{MODULE}:per_km",
        "inputs": {"fare": "float", "distance": "float"},
        "outputs": {"fare_per_km_py": "float"},
    },
    {"name": "label", "expression": "'busy' if busy else lower(city)", "type": "string"},
    {"name": "trips_float", "expression": "trips_24h", "type": "float"},
    distance="float",
    city="string",
)
INPUT_TYPES = {"fare": "float", "trips_24h": "int"}


def test_inputs_are_what_the_transformations_read_and_do_not_compute() -> None:
    transforms = RowTransforms(TRIPS)
    assert transforms.inputs == {"fare", "distance", "trips_24h", "city"}
    assert transforms.outputs == {
        "fare_per_km": "float",
        "busy": "bool",
        "fare_per_km_py": "float",
        "label": "string",
        "trips_float": "float",
    }
    assert transforms.check(INPUT_TYPES) == transforms.outputs


def test_apply_adds_the_outputs_in_order() -> None:
    columns = {
        "fare": pa.array([20.0, None, 300.0]),
        "trips_24h": pa.array([1, 5, 0]),
        "distance": pa.array([4.0, 1.0, 0.0]),
        "city": pa.array(["Oslo", "Bergen", None]),
        "passed_through": pa.array(["a", "b", "c"]),
    }
    out = RowTransforms(TRIPS).apply(columns)
    assert out["fare_per_km"].to_pylist() == [5.0, None, None]
    assert out["busy"].to_pylist() == [False, True, None]
    assert out["fare_per_km_py"].to_pylist() == [5.0, None, math.inf]  # pandas' own division
    assert out["label"].to_pylist() == ["oslo", "busy", None]
    assert out["trips_float"].type == pa.float64()
    assert out["passed_through"] is columns["passed_through"]
    assert out["fare"] is columns["fare"]


def test_request_fields_are_converted_to_their_declared_types() -> None:
    transforms = RowTransforms(TRIPS)
    columns = {
        "fare": pa.array([20.0]),
        "trips_24h": pa.array([1]),
        "distance": pa.array([4]),  # an int for a float field: widened
        "city": pa.array(["Oslo"]),
    }
    assert transforms.apply(columns)["fare_per_km"].to_pylist() == [5.0]
    with pytest.raises(InvalidInput) as caught:
        transforms.apply({**columns, "distance": pa.array(["far"])})
    assert caught.value.field == "distance"


def test_a_missing_request_field_is_refused_naming_it() -> None:
    columns = {"fare": pa.array([20.0]), "trips_24h": pa.array([1]), "city": pa.array(["Oslo"])}
    with pytest.raises(InvalidInput, match="'distance' is missing") as caught:
        RowTransforms(TRIPS).apply(columns)
    assert caught.value.field == "distance"


def test_python_transformations_are_called_once_per_batch() -> None:
    sample_functions.CALLS.clear()
    spec = view(
        {"name": "x", "expression": "fare * 10", "type": "int"},
        {"name": "d", "python": f"{MODULE}:counted", "inputs": {"x": "int"},
         "outputs": {"doubled": "int"}},
    )  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        RowTransforms(spec).check({"fare": "float"})  # float * 10 declared int
    assert caught.value.field == "transformations.0.type"
    fare = pa.array(np.arange(10_000))
    out = RowTransforms(spec).apply({"fare": fare})
    calls = sample_functions.CALLS
    assert calls == [10_000]
    assert out["doubled"].to_pylist()[:3] == [0, 20, 40]


# -- definition-time checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "declared", "accepted"),
    [
        ("fare * 2", "float", True),
        ("trips_24h * 2", "float", True),  # int -> float
        ("trips_24h > 2", "int", True),  # bool -> int
        ("trips_24h > 2", "float", True),
        ("trips_24h // 2", "int", True),
        ("None", "string", True),
        ("fare * 2", "int", False),  # float -> int
        ("trips_24h / 2", "int", False),  # / is float
        ("round(fare)", "int", False),  # round keeps the float type
        ("lower(city)", "float", False),  # string -> float
        ("trips_24h", "string", False),
        ("trips_24h", "bool", False),
        ("fare > 1", "string", False),
    ],
)
def test_declared_types_must_be_safe_from_the_computed_type(
    expression: str, declared: str, accepted: bool
) -> None:
    transforms = RowTransforms(
        view({"name": "out", "expression": expression, "type": declared}, city="string")
    )
    if accepted:
        assert transforms.check(INPUT_TYPES) == {"out": declared}
        columns = {
            "fare": pa.array([2.5, None]),
            "trips_24h": pa.array([3, 1]),
            "city": pa.array(["A", "b"]),
        }
        out = transforms.apply(columns)["out"]
        assert (
            out.type == {"float": pa.float64(), "int": pa.int64(), "string": pa.string()}[declared]
        )
    else:
        with pytest.raises(InvalidInput, match="does not convert safely") as caught:
            transforms.check(INPUT_TYPES)
        assert caught.value.field == "transformations.0.type"


def test_an_expression_reading_an_unknown_column_is_refused_at_check() -> None:
    transforms = RowTransforms(view({"name": "out", "expression": "fare + tip", "type": "float"}))
    assert transforms.inputs == {"fare", "tip"}
    with pytest.raises(InvalidInput, match="'tip', which is not a column") as caught:
        transforms.check(INPUT_TYPES)
    assert caught.value.field == "transformations.0.expression"


def test_an_expression_of_the_wrong_operand_types_is_refused_at_check() -> None:
    spec = view({"name": "out", "expression": "fare + city", "type": "float"}, city="string")
    with pytest.raises(InvalidInput, match="cannot join") as caught:
        RowTransforms(spec).check(INPUT_TYPES)
    assert caught.value.field == "transformations.0.expression"


def test_a_column_of_a_type_expressions_do_not_take_is_refused() -> None:
    spec = view({"name": "out", "expression": "embedding + 1", "type": "float"})
    with pytest.raises(InvalidInput, match="a column of type other") as caught:
        RowTransforms(spec).check({"fare": "float", "embedding": "other"})
    assert caught.value.field == "transformations.0.expression"


def test_a_column_computed_later_cannot_be_read() -> None:
    spec = view(
        {"name": "a", "expression": "b + 1", "type": "float"},
        {"name": "b", "expression": "fare * 2", "type": "float"},
    )
    with pytest.raises(InvalidInput, match=r"which transformations\.1 computes") as caught:
        RowTransforms(spec)
    assert caught.value.field == "transformations.0.expression"


def test_a_transformation_cannot_read_its_own_output() -> None:
    with pytest.raises(InvalidInput, match="its own output") as caught:
        RowTransforms(view({"name": "a", "expression": "a + 1", "type": "float"}))
    assert caught.value.field == "transformations.0.expression"
    spec = view(
        {"name": "p", "python": f"{MODULE}:counted", "inputs": {"doubled": "int"},
         "outputs": {"doubled": "int"}},
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="its own output") as caught:
        RowTransforms(spec)
    assert caught.value.field == "transformations.0.inputs.doubled"


def test_an_output_cannot_replace_a_feature() -> None:
    spec = view({"name": "fare", "expression": "1.0", "type": "float"})
    with pytest.raises(InvalidInput, match="already a column") as caught:
        RowTransforms(spec).check(INPUT_TYPES)
    assert caught.value.field == "transformations.0.name"


def test_python_inputs_are_checked_against_the_columns() -> None:
    spec = view(
        {"name": "p", "python": f"{MODULE}:counted", "inputs": {"x": "int"},
         "outputs": {"doubled": "int"}},
    )  # fmt: skip
    transforms = RowTransforms(spec)
    with pytest.raises(InvalidInput, match="not a column here") as caught:
        transforms.check(INPUT_TYPES)
    assert caught.value.field == "transformations.0.inputs.x"
    with pytest.raises(InvalidInput, match="'x' is float, which does not convert") as caught:
        transforms.check({"x": "float"})
    assert caught.value.field == "transformations.0.inputs.x"
    assert transforms.check({"x": "int"}) == {"doubled": "int"}
    assert transforms.check({"x": "bool"}) == {"doubled": "int"}


def test_an_unresolvable_python_reference_is_refused_when_built() -> None:
    spec = view(
        {"name": "fine", "expression": "fare", "type": "float"},
        {"name": "p", "python": "tests.features.views.nowhere:f", "inputs": {"fare": "float"},
         "outputs": {"y": "float"}},
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="cannot import") as caught:
        RowTransforms(spec)
    assert caught.value.field == "transformations.1.python"
    unresolved = RowTransforms(spec, resolve_python=False)  # checks without importing
    assert unresolved.check({"fare": "float"}) == {"fine": "float", "y": "float"}


def test_a_view_without_row_transformations() -> None:
    spec = view({"name": "n", "window": {"group": "trips", "function": "count", "duration": "1h"}})
    transforms = RowTransforms(spec)
    assert not transforms
    assert transforms.inputs == frozenset()
    columns = {"n": pa.array([1, 2])}
    assert transforms.apply(columns) == columns


# -- one implementation: all rows at once, or one by one -------------------------------------


def test_all_rows_at_once_equal_row_by_row() -> None:
    rng = np.random.default_rng(7)
    size = 1_000
    columns = {
        "fare": pa.array(rng.uniform(0, 200, size).round(2), mask=rng.random(size) < 0.1),
        "trips_24h": pa.chunked_array(
            [rng.integers(0, 8, size // 2), rng.integers(0, 8, size // 2)]
        ),
        "distance": pa.array(rng.integers(0, 20, size).astype(float)),
        "city": pa.array(rng.choice(["Oslo", "Bergen"], size), mask=rng.random(size) < 0.1),
    }
    transforms = RowTransforms(TRIPS)
    together = transforms.apply(columns)
    for i in range(size):
        one = transforms.apply({name: column.slice(i, 1) for name, column in columns.items()})
        for name in transforms.outputs:
            assert one[name].to_pylist() == [together[name][i].as_py()], (name, i)
