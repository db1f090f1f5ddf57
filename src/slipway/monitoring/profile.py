"""Column profiles: what a column of data looks like, in a form drift can be computed from.

One profile per column, the same for a baseline dataset and for a window of captured
traffic, so a monitor compares like with like:

- every column: logical type, count, missing, completeness;
- numbers: min / max / mean / std / sum, quantiles, distinct count, the histogram over the
  drift bins and a CDF sketch (for Kolmogorov-Smirnov);
- categories (strings, booleans): distinct count, frequencies of the most common values,
  and the full category set while it is small enough to check for new ones.

Drift bins come from the baseline: deciles of its values (ties merged), open at both ends
so values beyond the baseline's range still land in a bin. A current window is binned with
the baseline's edges; that is what makes the two histograms comparable.

The CDF sketch is exact (the sorted values) up to :data:`SKETCH_POINTS` values, and
otherwise that many evenly spaced quantiles, which bounds the KS error by
``1 / (SKETCH_POINTS - 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SKETCH_POINTS = 2001
TOP_K = 50
MAX_CATEGORIES = 1000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
DEFAULT_BINS = 10
NUMERIC = ("int", "float")
CATEGORICAL = ("string", "bool")


def logical_type(arrow_type: pa.DataType) -> str:
    """``int``, ``float``, ``bool``, ``string``, ``timestamp`` or ``other``."""
    if pa.types.is_dictionary(arrow_type):
        return logical_type(arrow_type.value_type)
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    return "other"


@dataclass(frozen=True)
class Bins:
    """Interior edges of the drift histogram: bin ``i`` holds ``edges[i-1] < x <= edges[i]``,
    bin 0 everything ``<= edges[0]``, the last bin everything above ``edges[-1]``."""

    edges: np.ndarray

    @classmethod
    def from_values(cls, sorted_values: np.ndarray, bins: int = DEFAULT_BINS) -> Bins:
        if sorted_values.size == 0:
            return cls(np.array([], dtype=np.float64))
        probs = np.arange(1, bins) / bins
        return cls(np.unique(sorted_quantiles(sorted_values, probs)))

    def counts(self, sorted_values: np.ndarray) -> np.ndarray:
        """How many of the (sorted) values fall in each bin: a search per edge, not per
        value, which is what keeps a 1M-row window cheap."""
        cuts = np.searchsorted(sorted_values, self.edges, side="right")  # values <= edge
        return np.diff(np.concatenate(([0], cuts, [sorted_values.size])))


def sorted_quantiles(sorted_values: np.ndarray, probs: Any) -> np.ndarray:
    """Quantiles of already sorted values by the inverted CDF (the smallest value whose
    CDF reaches ``p``): indexing, no partition or sort."""
    n = sorted_values.size
    index = np.clip(np.ceil(np.asarray(probs, dtype=np.float64) * n).astype(np.int64) - 1, 0, n - 1)
    return np.asarray(sorted_values[index], dtype=np.float64)


def _numbers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The non-null values as float64 (NaN counts as missing too)."""
    values = pc.drop_null(column)
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    array = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    return array[~np.isnan(array)] if array.size and np.isnan(array).any() else array


def _sketch(sorted_values: np.ndarray) -> dict[str, Any]:
    n = sorted_values.size
    if n <= SKETCH_POINTS:
        return {"kind": "exact", "values": sorted_values.tolist()}
    values = sorted_quantiles(sorted_values, np.linspace(0.0, 1.0, SKETCH_POINTS))
    return {"kind": "quantiles", "values": values.tolist()}


def sketch_cdf(sketch: dict[str, Any], count: int) -> tuple[np.ndarray, np.ndarray]:
    """The sketch as a step CDF: sorted points and ``F`` at each (right-continuous)."""
    values = np.asarray(sketch["values"], dtype=np.float64)
    if sketch["kind"] == "exact":
        return values, np.arange(1, values.size + 1, dtype=np.float64) / max(count, 1)
    return values, np.linspace(0.0, 1.0, values.size)


def _numeric_profile(ordered: np.ndarray, bins: Bins | None) -> dict[str, Any]:
    own_bins = bins or Bins.from_values(ordered)
    counts = own_bins.counts(ordered)
    n = ordered.size
    distinct = int(np.count_nonzero(np.diff(ordered))) + 1 if n else 0
    profile: dict[str, Any] = {
        "min": float(ordered[0]) if n else None,
        "max": float(ordered[-1]) if n else None,
        "mean": float(ordered.mean()) if n else None,
        "std": float(ordered.std()) if n else None,
        "sum": float(ordered.sum()),
        "distinct": distinct,
        "quantiles": (
            {
                str(q): float(v)
                for q, v in zip(QUANTILES, sorted_quantiles(ordered, QUANTILES), strict=True)
            }
            if n
            else {}
        ),
        "histogram": {
            "edges": own_bins.edges.tolist(),
            "counts": counts.tolist(),
        },
        "sketch": _sketch(ordered),
    }
    return profile


def category_counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Each non-null value (as text; booleans as ``true`` / ``false``) and its count."""
    values = pc.drop_null(column)
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    counted = pc.value_counts(values)
    names = counted.field("values").to_pylist()
    counts = counted.field("counts").to_numpy()
    return {names[i]: int(counts[i]) for i in np.argsort(-counts, kind="stable")}


def _categorical_profile(counts: dict[str, int]) -> dict[str, Any]:
    top = list(counts.items())[:TOP_K]
    return {
        "distinct": len(counts),
        "top": [{"value": name, "count": n} for name, n in top],
        "other_count": sum(counts.values()) - sum(n for _, n in top),
        "categories": sorted(counts) if len(counts) <= MAX_CATEGORIES else None,
    }


@dataclass(frozen=True)
class Described:
    """A column's profile plus what drift needs of its raw data: the sorted numbers of a
    numeric column, the value counts of a categorical one."""

    profile: dict[str, Any]
    numbers: np.ndarray | None = None
    counts: dict[str, int] | None = None


def describe(column: pa.ChunkedArray | pa.Array, *, bins: Bins | None = None) -> Described:
    """Profile one column; ``bins`` (the baseline's) makes histograms comparable."""
    kind = logical_type(column.type)
    count = len(column)
    profile: dict[str, Any] = {"type": kind, "count": count}
    numbers: np.ndarray | None = None
    counts: dict[str, int] | None = None
    if kind in NUMERIC:
        numbers = np.sort(_numbers(column))
        profile["numeric"] = _numeric_profile(numbers, bins)
        present = int(numbers.size)
    elif kind in CATEGORICAL:
        counts = category_counts(column)
        profile["categorical"] = _categorical_profile(counts)
        present = count - column.null_count
    else:
        present = count - column.null_count
    profile["missing"] = count - present
    profile["completeness"] = present / count if count else 1.0
    return Described(profile, numbers, counts)


def profile_column(
    column: pa.ChunkedArray | pa.Array, *, bins: Bins | None = None
) -> dict[str, Any]:
    """The profile of one column (see :func:`describe`)."""
    return describe(column, bins=bins).profile


def profile_table(
    table: pa.Table, *, bins: dict[str, Bins] | None = None
) -> dict[str, dict[str, Any]]:
    """Profiles of every column of ``table``, keyed by name, in column order."""
    chosen = bins or {}
    return {
        name: profile_column(table.column(name), bins=chosen.get(name))
        for name in table.column_names
    }


def bins_of(profile: dict[str, Any]) -> Bins | None:
    """The drift bins a stored numeric profile was built with."""
    numeric = profile.get("numeric")
    if numeric is None:
        return None
    return Bins(np.asarray(numeric["histogram"]["edges"], dtype=np.float64))
