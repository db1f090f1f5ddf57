"""A data-quality run: captured rows checked against a baseline's constraints, and drift.

Violations, each naming its column and check:

- ``missing_column`` — a baseline column the traffic no longer has;
- ``extra_column`` — a column the baseline never saw;
- ``type_mismatch`` — the column's logical type changed (an ``int`` column arriving as
  ``int`` in a ``float`` baseline is fine: it widens);
- ``completeness`` — the fraction of present values fell below the constraint;
- ``out_of_range`` — more than ``out_of_range_tolerance`` of the values lie outside the
  constraint's range;
- ``new_categories`` — more than ``new_category_tolerance`` of the values are categories
  the baseline did not have;
- ``drift`` — the column's drift score crossed its rule (see
  :class:`~slipway.monitoring.drift.DriftRule`); ``prediction`` is checked like any column.

The report also carries what the console draws: per column the scores, the current
summary next to the baseline's, and both histograms over the baseline's bins.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from slipway.monitoring.baseline import PREDICTION
from slipway.monitoring.capture import IDENTITY
from slipway.monitoring.drift import DriftRule, categorical_drift, numeric_drift
from slipway.monitoring.profile import CATEGORICAL, NUMERIC, bins_of, describe

_SUMMARY = ("min", "max", "mean", "std")


def _violation(column: str, check: str, message: str, **values: Any) -> dict[str, Any]:
    return {"column": column, "check": check, "message": message, **values}


def _compatible(baseline: str, current: str) -> bool:
    return baseline == current or (baseline == "float" and current == "int")


def evaluate(
    statistics: dict[str, Any],
    constraints: dict[str, Any],
    current: pa.Table,
) -> dict[str, Any]:
    """The report of one data-quality run over ``current`` (flat captured rows)."""
    checks = constraints["checks"]
    baseline_columns: dict[str, Any] = statistics["columns"]
    present = [name for name in current.column_names if name not in IDENTITY]
    violations: list[dict[str, Any]] = []
    columns: dict[str, Any] = {}

    for name in present:
        # A baseline without the model's outputs says nothing about them: not "extra".
        if name == PREDICTION:
            continue
        if name not in baseline_columns and checks["extra_columns"]:
            violations.append(_violation(name, "extra_column", f"{name!r} is not in the baseline"))

    present_columns = []
    for name, base in baseline_columns.items():
        rule = constraints["columns"].get(name)
        if name in current.column_names:
            present_columns.append((name, base, rule))
        elif checks["missing_columns"] and (rule is None or rule["completeness"] > 0):
            violations.append(
                _violation(name, "missing_column", f"{name!r} is missing from the traffic")
            )
    # Columns are independent, and their heavy parts (sorting, counting) release the GIL:
    # one thread per core.
    with ThreadPoolExecutor(
        max_workers=max(1, min(len(present_columns), os.cpu_count() or 1))
    ) as pool:
        results = pool.map(
            lambda item: _column(item[0], item[1], item[2], current[item[0]], checks),
            present_columns,
        )
        for (name, _, _), (entry, found) in zip(present_columns, results, strict=True):
            columns[name] = entry
            violations.extend(found)

    drifted = sorted(name for name, entry in columns.items() if entry.get("drifted"))
    return {
        "kind": "data_quality",
        "rows": current.num_rows,
        "violations": violations,
        "drifted": drifted,
        "columns": columns,
    }


def _column(
    name: str,
    base: dict[str, Any],
    rule: dict[str, Any] | None,
    column: pa.ChunkedArray,
    checks: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    found: list[dict[str, Any]] = []
    described = describe(column, bins=bins_of(base))
    profile = described.profile
    entry: dict[str, Any] = {
        "type": profile["type"],
        "baseline_type": base["type"],
        "role": base["role"],
        "completeness": profile["completeness"],
        "baseline_completeness": base["completeness"],
    }
    if checks["types"] and not _compatible(base["type"], profile["type"]):
        found.append(
            _violation(
                name,
                "type_mismatch",
                f"{name!r} is {profile['type']}, the baseline's is {base['type']}",
                value=profile["type"],
                expected=base["type"],
            )
        )
        return entry, found
    if rule is not None and profile["completeness"] < rule["completeness"]:
        found.append(
            _violation(
                name,
                "completeness",
                f"{name!r} is {profile['completeness']:.2%} complete, below "
                f"{rule['completeness']:.2%}",
                value=profile["completeness"],
                threshold=rule["completeness"],
            )
        )
    if base["type"] in NUMERIC and described.numbers is not None:
        entry["current"] = {k: profile["numeric"][k] for k in _SUMMARY}
        entry["baseline"] = {k: base["numeric"][k] for k in _SUMMARY}
        found.extend(_range(name, rule, described.numbers, checks))
        if described.numbers.size:
            entry["drift"] = numeric_drift(base, described.numbers)
    elif base["type"] in CATEGORICAL and described.counts is not None:
        entry["current"] = {"distinct": profile["categorical"]["distinct"]}
        entry["baseline"] = {"distinct": base["categorical"]["distinct"]}
        found.extend(_categories(name, rule, described.counts, checks))
        if described.counts:
            entry["drift"] = categorical_drift(base, described.counts)
    drift_rule = rule.get("drift") if rule is not None else None
    if "drift" in entry and drift_rule is not None:
        decision = DriftRule(drift_rule["method"], drift_rule["threshold"])
        entry["drift"]["rule"] = drift_rule
        entry["drifted"] = decision.drifted(entry["drift"])
        if entry["drifted"]:
            score = entry["drift"][decision.method]
            found.append(
                _violation(
                    name,
                    "drift",
                    f"{name!r} drifted: {decision.method} {score:.4g} "
                    f"(threshold {decision.threshold:g})",
                    method=decision.method,
                    value=score,
                    threshold=decision.threshold,
                )
            )
    return entry, found


def _range(
    name: str, rule: dict[str, Any] | None, numbers: np.ndarray, checks: dict[str, Any]
) -> list[dict[str, Any]]:
    if rule is None or rule.get("range") is None or numbers.size == 0:
        return []
    low, high = rule["range"].get("min"), rule["range"].get("max")
    # ``numbers`` is sorted: the values outside the range are at its two ends.
    below = int(np.searchsorted(numbers, low, side="left")) if low is not None else 0
    above = (
        numbers.size - int(np.searchsorted(numbers, high, side="right")) if high is not None else 0
    )
    fraction = (below + above) / numbers.size
    if fraction <= checks["out_of_range_tolerance"]:
        return []
    return [
        _violation(
            name,
            "out_of_range",
            f"{fraction:.2%} of {name!r} lie outside [{low}, {high}]",
            value=fraction,
            threshold=checks["out_of_range_tolerance"],
            observed={"min": float(numbers[0]), "max": float(numbers[-1])},
        )
    ]


def _categories(
    name: str, rule: dict[str, Any] | None, counts: dict[str, int], checks: dict[str, Any]
) -> list[dict[str, Any]]:
    if rule is None or rule.get("categories") is None or not counts:
        return []
    known = set(rule["categories"])
    new = {value: n for value, n in counts.items() if value not in known}
    fraction = sum(new.values()) / sum(counts.values())
    if fraction <= checks["new_category_tolerance"]:
        return []
    examples = sorted(new, key=lambda value: -new[value])[:10]
    return [
        _violation(
            name,
            "new_categories",
            f"{fraction:.2%} of {name!r} are categories the baseline did not have",
            value=fraction,
            threshold=checks["new_category_tolerance"],
            examples=examples,
        )
    ]
