"""Baselines, suggested constraints and the data-quality checks, on small known tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from slipway.core.errors import InvalidInput
from slipway.monitoring.baseline import (
    build_statistics,
    suggest_constraints,
    validate_constraints,
)
from slipway.monitoring.data_quality import evaluate


def _baseline() -> tuple[dict, dict]:  # type: ignore[type-arg]
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "temp": rng.normal(50, 10, size=5000),
            "hour": rng.integers(5, 23, size=5000),
            "origin": rng.choice(["EWR", "JFK", "LGA"], size=5000),
            "score": rng.uniform(size=5000),
        }
    )
    statistics = build_statistics(table, source={"file": "x.parquet"}, prediction_column="score")
    return statistics, suggest_constraints(statistics)


def _current(rows: int = 2000, **overrides: object) -> pa.Table:
    rng = np.random.default_rng(2)
    columns: dict[str, object] = {
        "temp": rng.normal(50, 10, size=rows),
        "hour": rng.integers(5, 23, size=rows),
        "origin": rng.choice(["EWR", "JFK", "LGA"], size=rows),
        "prediction": rng.uniform(size=rows),
        "inference_id": [f"i{n}" for n in range(rows)],
    }
    columns.update(overrides)
    return pa.table({k: v for k, v in columns.items() if v is not None})


def test_statistics_document_describes_every_column() -> None:
    statistics, constraints = _baseline()
    columns = statistics["columns"]
    assert statistics["dataset"]["rows"] == 5000
    assert set(columns) == {"temp", "hour", "origin", "prediction"}
    assert columns["prediction"]["role"] == "prediction"
    assert columns["temp"]["type"] == "float" and columns["hour"]["type"] == "int"
    temp = columns["temp"]["numeric"]
    assert temp["mean"] == pytest.approx(50, abs=0.5)
    assert temp["min"] <= temp["quantiles"]["0.5"] <= temp["max"]
    assert sum(temp["histogram"]["counts"]) == 5000
    origin = columns["origin"]["categorical"]
    assert origin["distinct"] == 3 and origin["categories"] == ["EWR", "JFK", "LGA"]
    assert constraints["columns"]["temp"]["range"] == {"min": temp["min"], "max": temp["max"]}
    assert constraints["columns"]["origin"]["categories"] == ["EWR", "JFK", "LGA"]
    assert constraints["columns"]["temp"]["completeness"] == 1.0


def test_the_same_distribution_has_no_violations() -> None:
    statistics, constraints = _baseline()
    report = evaluate(statistics, constraints, _current())
    assert report["violations"] == [] and report["drifted"] == []
    assert report["columns"]["temp"]["drift"]["psi"] < 0.05


def test_each_check_reports_its_column() -> None:
    statistics, constraints = _baseline()
    rng = np.random.default_rng(3)
    temp = rng.normal(80, 10, size=2000).tolist()
    temp[:200] = [None] * 200
    current = _current(
        temp=pa.array(temp, pa.float64()),
        hour=None,  # missing
        origin=rng.choice(["EWR", "JFK", "BOS"], size=2000),  # a new category
        extra=np.zeros(2000),
        prediction=pa.array(rng.uniform(size=2000).astype(str)),  # a type change
    )
    found = {
        (v["column"], v["check"]) for v in evaluate(statistics, constraints, current)["violations"]
    }
    assert found == {
        ("hour", "missing_column"),
        ("extra", "extra_column"),
        ("temp", "completeness"),
        ("temp", "out_of_range"),
        ("temp", "drift"),
        ("origin", "new_categories"),
        ("origin", "drift"),
        ("prediction", "type_mismatch"),
    }


def test_an_int_column_in_a_float_baseline_is_not_a_type_change() -> None:
    statistics, constraints = _baseline()
    current = _current(temp=np.full(2000, 50, dtype=np.int64))
    checks = {v["check"] for v in evaluate(statistics, constraints, current)["violations"]}
    assert "type_mismatch" not in checks


def test_edited_constraints_are_validated_and_take_effect() -> None:
    statistics, constraints = _baseline()
    constraints["columns"]["temp"]["drift"] = {"method": "ks_statistic", "threshold": 0.5}
    constraints["columns"]["temp"]["range"] = None
    constraints["checks"]["new_category_tolerance"] = 0.9
    normalized = validate_constraints(constraints, statistics)
    current = _current(temp=np.random.default_rng(4).normal(60, 10, size=2000))
    report = evaluate(statistics, normalized, current)
    assert report["columns"]["temp"]["drift"]["ks_statistic"] < 0.5
    assert "temp" not in report["drifted"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c["columns"].update(nope={}), "constraints.columns.nope"),
        (
            lambda c: c["columns"]["temp"].update(completeness=2),
            "constraints.columns.temp.completeness",
        ),
        (lambda c: c["columns"]["temp"].update(type="string"), "constraints.columns.temp.type"),
        (
            lambda c: c["columns"]["origin"].update(drift={"method": "ks_statistic"}),
            "constraints.columns.origin.drift.method",
        ),
        (
            lambda c: c["columns"]["origin"].update(range={"min": 1}),
            "constraints.columns.origin.range",
        ),
        (lambda c: c["checks"].update(types="yes"), "constraints.checks.types"),
        (lambda c: c["checks"].update(bogus=True), "constraints.checks.bogus"),
    ],
)
def test_bad_constraints_name_the_field(change: object, field: str) -> None:
    statistics, constraints = _baseline()
    change(constraints)  # type: ignore[operator]
    with pytest.raises(InvalidInput) as caught:
        validate_constraints(constraints, statistics)
    assert caught.value.field == field


def test_an_empty_dataset_is_refused() -> None:
    with pytest.raises(InvalidInput):
        build_statistics(pa.table({"x": pa.array([], pa.float64())}), source={})


def test_predictions_are_not_extra_columns_for_a_baseline_without_them() -> None:
    table = pa.table({"temp": np.random.default_rng(5).normal(50, 10, size=1000)})
    statistics = build_statistics(table, source={"file": "x.parquet"})
    current = pa.table({"temp": table["temp"], "prediction": np.zeros(1000)})
    assert evaluate(statistics, suggest_constraints(statistics), current)["violations"] == []


def test_a_classifiers_integer_labels_compare_with_captured_floats() -> None:
    labels = np.random.default_rng(6).integers(0, 2, size=1000)
    statistics = build_statistics(
        pa.table({"x": np.zeros(1000), "label": labels}),
        source={"file": "x.parquet"},
        prediction_column="label",
    )
    assert statistics["columns"]["prediction"]["type"] == "float"
    current = pa.table({"x": np.zeros(500), "prediction": labels[:500].astype(np.float64)})
    report = evaluate(statistics, suggest_constraints(statistics), current)
    assert report["violations"] == [] and "drift" in report["columns"]["prediction"]
