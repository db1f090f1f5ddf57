"""Baseline documents: the statistics of a reference dataset and the constraints suggested
from them, shaped after SageMaker Model Monitor's ``statistics.json`` / ``constraints.json``.

``statistics.json``::

    {"schema_version": 1,
     "dataset": {"rows": 180000, "source": {...}},
     "model": {"name": "flight-delay", "version": 3} | null,
     "columns": {"temp": {"role": "feature", "type": "float", "count", "missing",
                          "completeness", "numeric": {...}} | {..., "categorical": {...}}}}

(the column profile is :mod:`slipway.monitoring.profile`'s). ``constraints.json``::

    {"schema_version": 1,
     "columns": {"temp": {"type": "float", "role": "feature", "completeness": 0.99,
                          "range": {"min": -10.0, "max": 104.0},
                          "categories": null,
                          "drift": {"method": "psi", "threshold": 0.2}}},
     "checks": {"missing_columns": true, "extra_columns": true, "types": true,
                "out_of_range_tolerance": 0.01, "new_category_tolerance": 0.01}}

Constraints are suggestions: a user edits them (loosens a range, raises a drift
threshold, switches a column to the KS statistic) and stores them back; they are validated
on the way in so a monitor never runs on a malformed document.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from slipway.core.errors import InvalidInput
from slipway.monitoring.drift import (
    CATEGORICAL_METHODS,
    NUMERIC_METHODS,
    DriftRule,
)
from slipway.monitoring.profile import CATEGORICAL, NUMERIC, profile_table

SCHEMA_VERSION = 1
PREDICTION = "prediction"
ROLES = ("feature", "prediction")
DEFAULT_CHECKS: dict[str, Any] = {
    "missing_columns": True,
    "extra_columns": True,
    "types": True,
    "out_of_range_tolerance": 0.01,
    "new_category_tolerance": 0.01,
}


def build_statistics(
    table: pa.Table,
    *,
    source: dict[str, Any],
    model: dict[str, Any] | None = None,
    prediction_column: str | None = None,
) -> dict[str, Any]:
    """``statistics.json`` for ``table``; ``prediction_column`` (when present) is profiled
    under the name ``prediction``, which is what captured traffic calls it."""
    if table.num_rows == 0:
        raise InvalidInput("a baseline needs at least one row", field="dataset")
    if prediction_column is not None and prediction_column != PREDICTION:
        if PREDICTION in table.column_names:
            raise InvalidInput(
                f"the dataset has a column named {PREDICTION!r} already", field="dataset"
            )
        names = [PREDICTION if n == prediction_column else n for n in table.column_names]
        table = table.rename_columns(names)
    if PREDICTION in table.column_names and pa.types.is_integer(table[PREDICTION].type):
        # Capture stores numeric predictions as float64: a classifier's integer labels in
        # the baseline must compare as the same type.
        table = table.set_column(
            table.column_names.index(PREDICTION), PREDICTION, table[PREDICTION].cast(pa.float64())
        )
    columns = profile_table(table)
    for name, profile in columns.items():
        profile["role"] = "prediction" if name == PREDICTION else "feature"
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": {"rows": table.num_rows, "source": source},
        "model": model,
        "columns": columns,
    }


def suggest_constraints(statistics: dict[str, Any]) -> dict[str, Any]:
    """Constraints that the baseline itself satisfies: its types, completeness rounded
    down to a percent, its value range, its categories (while few) and the default drift
    rule."""
    columns: dict[str, Any] = {}
    for name, profile in statistics["columns"].items():
        entry: dict[str, Any] = {
            "type": profile["type"],
            "role": profile["role"],
            "completeness": math.floor(profile["completeness"] * 100) / 100,
            "range": None,
            "categories": None,
            "drift": None,
        }
        if profile["type"] in NUMERIC and profile["numeric"]["min"] is not None:
            entry["range"] = {"min": profile["numeric"]["min"], "max": profile["numeric"]["max"]}
            entry["drift"] = {"method": "psi", "threshold": 0.2}
        elif profile["type"] in CATEGORICAL:
            entry["categories"] = profile["categorical"]["categories"]
            entry["drift"] = {"method": "psi", "threshold": 0.2}
        columns[name] = entry
    return {"schema_version": SCHEMA_VERSION, "columns": columns, "checks": dict(DEFAULT_CHECKS)}


def validate_constraints(document: Any, statistics: dict[str, Any]) -> dict[str, Any]:
    """A user's constraints, checked against the baseline they go with; returns them
    normalized (defaults filled in). Errors name the field."""
    if not isinstance(document, dict):
        raise InvalidInput("constraints must be a JSON object", field="constraints")
    columns = document.get("columns")
    if not isinstance(columns, dict):
        raise InvalidInput("constraints need a columns object", field="constraints.columns")
    known = statistics["columns"]
    normalized: dict[str, Any] = {}
    for name, entry in columns.items():
        field = f"constraints.columns.{name}"
        if name not in known:
            raise InvalidInput(f"the baseline has no column {name!r}", field=field)
        if not isinstance(entry, dict):
            raise InvalidInput("must be an object", field=field)
        normalized[name] = _column_constraint(entry, known[name], field)
    checks = dict(DEFAULT_CHECKS)
    given = document.get("checks", {})
    if not isinstance(given, dict):
        raise InvalidInput("must be an object", field="constraints.checks")
    for key, value in given.items():
        if key not in DEFAULT_CHECKS:
            raise InvalidInput(f"unknown check {key!r}", field=f"constraints.checks.{key}")
        expected = type(DEFAULT_CHECKS[key])
        if expected is float:
            if not _number(value) or not 0 <= value <= 1:
                raise InvalidInput("must be a fraction 0-1", field=f"constraints.checks.{key}")
            value = float(value)
        elif not isinstance(value, bool):
            raise InvalidInput("must be true or false", field=f"constraints.checks.{key}")
        checks[key] = value
    return {"schema_version": SCHEMA_VERSION, "columns": normalized, "checks": checks}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _column_constraint(
    entry: dict[str, Any], profile: dict[str, Any], field: str
) -> dict[str, Any]:
    unknown = set(entry) - {"type", "role", "completeness", "range", "categories", "drift"}
    if unknown:
        raise InvalidInput(f"unknown keys {sorted(unknown)}", field=field)
    kind = entry.get("type", profile["type"])
    if kind != profile["type"]:
        raise InvalidInput(
            f"type {kind!r} differs from the baseline's {profile['type']!r}", field=f"{field}.type"
        )
    completeness = entry.get("completeness", 0.0)
    if not _number(completeness) or not 0 <= completeness <= 1:
        raise InvalidInput("must be a fraction 0-1", field=f"{field}.completeness")
    bounds = entry.get("range")
    if bounds is not None:
        if kind not in NUMERIC:
            raise InvalidInput("only numeric columns have a range", field=f"{field}.range")
        if not isinstance(bounds, dict) or set(bounds) - {"min", "max"}:
            raise InvalidInput("must be {min, max}", field=f"{field}.range")
        for side in ("min", "max"):
            if bounds.get(side) is not None and not _number(bounds[side]):
                raise InvalidInput("must be a number or null", field=f"{field}.range.{side}")
    categories = entry.get("categories")
    if categories is not None:
        if kind not in CATEGORICAL:
            raise InvalidInput(
                "only categorical columns have categories", field=f"{field}.categories"
            )
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise InvalidInput("must be a list of strings", field=f"{field}.categories")
    drift = entry.get("drift")
    if drift is not None:
        if not isinstance(drift, dict):
            raise InvalidInput("must be an object", field=f"{field}.drift")
        rule = DriftRule.parse(drift, f"{field}.drift")
        allowed = NUMERIC_METHODS if kind in NUMERIC else CATEGORICAL_METHODS
        if rule.method not in allowed:
            raise InvalidInput(
                f"{rule.method} does not apply to a {kind} column", field=f"{field}.drift.method"
            )
        drift = {"method": rule.method, "threshold": rule.threshold}
    return {
        "type": kind,
        "role": profile["role"],
        "completeness": float(completeness),
        "range": bounds,
        "categories": categories,
        "drift": drift,
    }
