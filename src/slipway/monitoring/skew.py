"""Served feature values against the same values recomputed offline, row by row.

The one job here is the comparison; :mod:`slipway.monitoring.skew_monitor` gathers the
two sides (the captured traffic, and the feature view recomputed for its keys, request
fields and times). Both sides arrive aligned: row i of one is row i of the other.

Per feature, a row **mismatches** when:

- one side is null and the other is not (both null is a match: nothing was known on
  either path). A NaN counts as null: the gateway's numeric input matrices carry a
  missing value as NaN;
- numbers (integers, floats; a boolean compared with a number counts as 0/1):
  ``|served - offline| > abs_tolerance + rel_tolerance * |offline|``, the offline value
  being the reference (NumPy's ``isclose`` rule). Equal infinities match;
- anything else (text, booleans, timestamps): the values are not equal. When the two
  sides have different types (text served for a number column), both are compared as
  text.

The share is mismatches / rows compared. For numbers the differences ``served -
offline`` of the rows where both sides have a value are summarized: quantiles of
``|difference|`` (p50, p90, p99, max) and a histogram by sign and decade — one bin per
``[10^k, 10^(k+1))`` on each side, and one for exact zeros — because skew spans orders of
magnitude: float noise (1e-12), a unit slip (x1000), an off-by-one count. Everything is
computed on whole Arrow columns; no Python runs per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slipway.core.errors import InvalidInput

CHECK = "feature_skew_check"
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
EXAMPLES = 5  # mismatching rows shown per feature


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values


def _numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _as_numbers(values: pa.Array) -> pa.Array:
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    return pc.cast(values, pa.float64())


def _mode(served: pa.DataType, offline: pa.DataType) -> str:
    """How two columns compare: ``number``, ``equal`` (same non-numeric type) or
    ``text`` (different types, compared as text)."""
    numbers = [_numeric(served), _numeric(offline)]
    if all(numbers) or (
        any(numbers) and (pa.types.is_boolean(served) or pa.types.is_boolean(offline))
    ):
        return "number"
    if served == offline:
        return "equal"
    return "text"


def _number_mismatch(
    a: pa.Array, b: pa.Array, abs_tolerance: float, rel_tolerance: float
) -> tuple[pa.Array, pa.Array]:
    """Per row whether two float64 numbers differ beyond the tolerance, and ``a - b``."""
    difference = pc.subtract(a, b)
    bound = pc.add(pc.multiply(pc.abs(b), rel_tolerance), abs_tolerance)
    # An infinite difference is never within an (infinite) bound; equal infinities match.
    close = pc.and_(pc.is_finite(difference), pc.less_equal(pc.abs(difference), bound))
    return pc.invert(pc.or_(close, pc.equal(a, b))), difference


def _decades(magnitudes: np.ndarray) -> np.ndarray:
    """floor(log10(m)) of positive finite numbers, exact at powers of ten (log10 may
    round 1e-3 to just below -3)."""
    decades: np.ndarray = np.floor(np.log10(magnitudes)).astype(np.int64)
    decades += magnitudes >= np.power(10.0, decades + 1)
    decades -= magnitudes < np.power(10.0, decades)
    return decades


def _histogram(differences: np.ndarray) -> list[dict[str, Any]]:
    """Finite differences counted by sign and decade, in ascending order: contiguous
    bins from the largest negative decade seen to the smallest, one bin for exact zeros,
    then the positive decades from the smallest seen to the largest."""

    def side(decades: np.ndarray, sign: float) -> list[dict[str, Any]]:
        if decades.size == 0:
            return []
        low = int(decades.min())
        bins = [
            (10.0 ** (low + i), 10.0 ** (low + i + 1), int(count))
            for i, count in enumerate(np.bincount(decades - low))
        ]
        if sign < 0:
            return [{"low": -high, "high": -low_, "count": n} for low_, high, n in reversed(bins)]
        return [{"low": low_, "high": high, "count": n} for low_, high, n in bins]

    nonzero = differences[differences != 0]
    decades = _decades(np.abs(nonzero))
    zero = {"low": 0.0, "high": 0.0, "count": int(differences.size - nonzero.size)}
    return [*side(decades[nonzero < 0], -1.0), zero, *side(decades[nonzero > 0], 1.0)]


def _distribution(difference: pa.Array) -> dict[str, Any]:
    """Quantiles of |difference| and the histogram, over the finite differences (of the
    rows where both sides have a number)."""
    values = difference.to_numpy(zero_copy_only=False)
    finite = values[np.isfinite(values)]
    summary: dict[str, Any] = {
        "rows": int(finite.size),
        "not_finite": int(values.size - finite.size),
    }
    if finite.size == 0:
        return summary | {name: None for name in (*QUANTILES, "max")} | {"histogram": []}
    magnitude = np.abs(finite)
    quantiles = np.quantile(magnitude, list(QUANTILES.values()))
    summary |= {name: float(q) for name, q in zip(QUANTILES, quantiles, strict=True)}
    return summary | {
        "max": float(magnitude.max()),
        "mean": float(finite.mean()),
        "histogram": _histogram(finite),
    }


def compare_feature(
    served: pa.Array | pa.ChunkedArray | None,
    offline: pa.Array | pa.ChunkedArray,
    *,
    abs_tolerance: float,
    rel_tolerance: float,
) -> tuple[dict[str, Any], pa.Array]:
    """One feature's comparison (``served`` None: the capture lacks the column, every
    row counts as missing in it) and the per-row mismatch mask."""
    b = _flat(offline)
    a = pa.nulls(len(b), b.type) if served is None else _flat(served)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} served rows against {len(b)} recomputed")
    served_type = a.type
    if pa.types.is_null(a.type):  # nothing but nulls captured: typeless
        a = pa.nulls(len(a), b.type)
    elif pa.types.is_null(b.type):
        b = pa.nulls(len(b), a.type)
    mode = _mode(a.type, b.type)
    if mode == "number":
        a, b = _as_numbers(a), _as_numbers(b)
    # A NaN is a missing number: the gateway's numeric input matrices carry a missing
    # value (an enrichment's OnMissing.NULL) as NaN, where the view computes a null.
    a_null, b_null = pc.is_null(a, nan_is_null=True), pc.is_null(b, nan_is_null=True)
    both = pc.invert(pc.or_(a_null, b_null))
    difference = None
    if mode == "number":
        differ, difference = _number_mismatch(a, b, abs_tolerance, rel_tolerance)
    elif mode == "text":
        differ = pc.not_equal(pc.cast(a, pa.string()), pc.cast(b, pa.string()))
    else:
        differ = pc.not_equal(a, b)
    mismatch = pc.or_(pc.xor(a_null, b_null), pc.and_(both, pc.fill_null(differ, False)))
    rows = len(b)
    mismatches = int(pc.sum(mismatch, min_count=0).as_py())
    entry: dict[str, Any] = {
        "in_capture": served is not None,
        "served_type": str(served_type) if served is not None else None,
        "offline_type": str(b.type),
        "compared_as": mode,
        "rows": rows,
        "mismatches": mismatches,
        "share": mismatches / rows if rows else 0.0,
        "missing_in_capture": int(pc.sum(pc.and_(a_null, pc.invert(b_null)), min_count=0).as_py()),
        "missing_offline": int(pc.sum(pc.and_(b_null, pc.invert(a_null)), min_count=0).as_py()),
        "both_missing": int(pc.sum(pc.and_(a_null, b_null), min_count=0).as_py()),
    }
    if difference is not None:
        entry["differences"] = _distribution(pc.filter(difference, both))
    return entry, mismatch


def _examples(
    mismatch: pa.Array, served: pa.Array | None, offline: pa.Array, identity: pa.Table | None
) -> list[dict[str, Any]]:
    """The first few mismatching rows: their identity (inference id, row, time) and both
    values, to look up what was served."""
    where = pc.indices_nonzero(mismatch).slice(0, EXAMPLES)
    if len(where) == 0:
        return []
    rows: list[dict[str, Any]] = (
        identity.take(where).to_pylist()
        if identity is not None
        else [{} for _ in range(len(where))]
    )
    served_values = (
        _flat(served).take(where).to_pylist() if served is not None else [None] * len(where)
    )
    offline_values = _flat(offline).take(where).to_pylist()
    for row, a, b in zip(rows, served_values, offline_values, strict=True):
        row["served"], row["offline"] = a, b
    return rows


def compare(
    served: pa.Table,
    offline: pa.Table,
    features: Sequence[str],
    *,
    abs_tolerance: float,
    rel_tolerance: float,
    max_mismatch_share: float,
    identity: Sequence[str] = ("inference_id", "row", "time"),
) -> dict[str, Any]:
    """Compare ``features`` of two aligned tables (row i of ``served`` is row i of
    ``offline``; a feature absent from ``served`` counts as missing there). Returns
    ``features`` (per feature: rows, mismatches, share, missing on either side, the
    difference distribution for numbers, examples), ``metrics`` (feature → share),
    ``skewed`` and ``violations`` (features whose share is above
    ``max_mismatch_share``)."""
    if served.num_rows != offline.num_rows:
        raise ValueError(f"{served.num_rows} served rows against {offline.num_rows} recomputed")
    named = [c for c in identity if c in served.column_names]
    ids = served.select(named) if named else None
    report: dict[str, Any] = {"features": {}, "metrics": {}, "skewed": [], "violations": []}
    for index, feature in enumerate(features):
        a = served[feature] if feature in served.column_names else None
        b = offline[feature]
        try:
            entry, mismatch = compare_feature(
                a, b, abs_tolerance=abs_tolerance, rel_tolerance=rel_tolerance
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            served_type = "absent" if a is None else str(a.type)
            raise InvalidInput(
                f"{feature!r}: the served values ({served_type}) do not compare with the"
                f" recomputed ones ({b.type}): {exc}",
                field=f"skew.features.{index}",
            ) from None
        entry["examples"] = _examples(mismatch, a, b, ids)
        report["features"][feature] = entry
        report["metrics"][feature] = entry["share"]
        if entry["rows"] and entry["share"] > max_mismatch_share:
            report["skewed"].append(feature)
            absent = "" if a is not None else " (the capture has no such column)"
            report["violations"].append(
                {
                    "column": feature,
                    "metric": feature,
                    "check": CHECK,
                    "message": f"{entry['mismatches']:,} of {entry['rows']:,} rows"
                    f" ({entry['share']:.2%}) served a {feature!r} other than the feature"
                    f" view recomputed offline{absent}; at most {max_mismatch_share:.2%}"
                    " may differ",
                    "value": entry["share"],
                    "threshold": max_mismatch_share,
                }
            )
    return report
