"""Record-by-record verdicts at batch speed: which records of a batch are valid, and why
each of the others is not.

Batch ingestion is all or nothing (:func:`~slipway.features.validation.validate_batch`).
A stream cannot refuse a whole micro-batch for one bad record, so it needs a verdict per
record — and that verdict must depend on the record alone, never on its neighbours: after
a crash the same record is consumed again in a differently cut micro-batch, and it must
land in the same place (store or dead-letter topic) with the same values.

Validating each record as a batch of one gives exactly that, with the very checks and
messages of batch ingestion, but costs a millisecond or more per record. So:

1. Records are grouped by *shape*: their column names and the JSON kind of each value
   (string, integer, number, boolean, null, array, object; integers and fractions are
   one kind for float features, since they convert the same way). Converting records of
   one shape to Arrow gives every record the column types it would get alone, so a row's
   problems in the group are exactly its problems alone. Mixing shapes is what makes a
   verdict depend on neighbours (``[1, "x"]`` in one column becomes text).
2. Each group is validated as one batch. A valid group — the normal case, one group per
   micro-batch — costs one validation.
3. An invalid group is bisected: each half is validated again, down to single records,
   whose ``BatchInvalid`` problems are the record's reasons. A bad record costs about
   ``2·log2(n)`` validations of ever smaller slices; valid slices are kept whole.

Valid rows come back as one table in input order (so later records of a key still win
ties), with each row's position in the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from slipway.features.definitions import FeatureGroup, FeatureType
from slipway.features.validation import BatchInvalid, as_arrow, group_schema, validate_batch

# Integers convert to float64 exactly only up to 2**53; beyond, they keep a kind of their own.
_EXACT_IN_FLOAT = 2**53


@dataclass(frozen=True)
class Rejection:
    """Why the record at ``index`` of the input is invalid."""

    index: int
    reason: str
    problems: list[dict[str, str]]


@dataclass(frozen=True)
class Verdicts:
    valid: pa.Table  # the valid records, validated and coerced, in input order
    indices: list[int]  # the input position of each row of ``valid``
    rejected: list[Rejection] = field(default_factory=list)  # in input order


def split_records(
    group: FeatureGroup, records: Sequence[Mapping[str, Any]], *, timezone: str | None = None
) -> Verdicts:
    """Validate ``records`` (JSON objects) one by one against ``group``; see the module."""
    floats = frozenset(f.name for f in group.features if f.type is FeatureType.FLOAT)
    shapes: dict[tuple[tuple[str, str], ...], list[int]] = {}
    # A record's shape from its names and value types as they come (tuples built in C),
    # turned into the canonical shape once per distinct layout; only an integer in a
    # float feature needs its value looked at (beyond 2**53 it is a kind of its own).
    layouts: dict[tuple[tuple[Any, ...], tuple[type, ...]], tuple[tuple[str, str], ...] | None] = {}
    for index, record in enumerate(records):
        layout = (tuple(record), tuple(map(type, record.values())))
        if layout in layouts:
            shape = layouts[layout]
        else:
            by_value = any(
                kind is int and name in floats for name, kind in zip(*layout, strict=True)
            )
            shape = layouts[layout] = None if by_value else _shape(record, floats)
        if shape is None:  # an integer in a float feature
            shape = _shape(record, floats)
        shapes.setdefault(shape, []).append(index)
    kept: list[tuple[list[int], pa.Table]] = []
    rejected: list[Rejection] = []
    for indices in shapes.values():
        _bisect(group, records, indices, timezone, kept, rejected)
    rejected.sort(key=lambda r: r.index)
    if not kept:
        return Verdicts(group_schema(group).empty_table(), [], rejected)
    order = [i for indices, _ in kept for i in indices]
    table = pa.concat_tables([t for _, t in kept])
    permutation = np.argsort(np.asarray(order), kind="stable")
    return Verdicts(table.take(pa.array(permutation)), sorted(order), rejected)


def _shape(record: Mapping[str, Any], floats: frozenset[str]) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted((str(name), _kind(value, name in floats)) for name, value in record.items())
    )


def _kind(value: Any, float_feature: bool) -> str:
    exact = isinstance(value, float) or (isinstance(value, int) and abs(value) < _EXACT_IN_FLOAT)
    if float_feature and exact and not isinstance(value, bool):
        return "number"
    return type(value).__name__


def _bisect(
    group: FeatureGroup,
    records: Sequence[Mapping[str, Any]],
    indices: list[int],
    timezone: str | None,
    kept: list[tuple[list[int], pa.Table]],
    rejected: list[Rejection],
) -> None:
    try:
        table = validate_batch(group, _table([records[i] for i in indices]), timezone=timezone)
    except _Unreadable as exc:
        if len(indices) == 1:
            problem = {"column": "", "message": exc.message}
            rejected.append(Rejection(indices[0], exc.message, [problem]))
            return
    except BatchInvalid as exc:
        if len(indices) == 1:
            problems = [
                {"column": p["column"], "message": p["message"]}
                for p in exc.details.get("problems", [])
            ]
            rejected.append(Rejection(indices[0], _reason(problems), problems))
            return
    else:
        kept.append((indices, table))
        return
    middle = len(indices) // 2
    _bisect(group, records, indices[:middle], timezone, kept, rejected)
    _bisect(group, records, indices[middle:], timezone, kept, rejected)


class _Unreadable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _table(records: list[Mapping[str, Any]]) -> pa.Table:
    try:
        return as_arrow([dict(r) for r in records])
    except Exception as exc:
        # A record the SDK's own conversion cannot turn into columns at all (deeply
        # nested, enormous integers): one record must never stop a stream.
        raise _Unreadable(f"not convertible to columns: {type(exc).__name__}: {exc}") from None


def _reason(problems: list[dict[str, str]]) -> str:
    return "; ".join(f"column {p['column']!r}: {p['message']}" for p in problems)
