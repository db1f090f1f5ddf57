"""Validate and coerce a batch of records to a feature group's Arrow schema.

The whole batch is checked before anything is written, and every problem is collected —
unknown or missing columns, values that do not coerce (with their row numbers), null
record ids or event times, NaN/Inf where not allowed, wrong vector lengths — so the error
lists what is wrong (the first N problems and the total count), not just the first thing.
Checks are vectorized with Arrow compute; the per-value search for row numbers runs only
on a column already known to be bad.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from slipway.core.errors import InvalidInput
from slipway.features.definitions import Feature, FeatureGroup, FeatureType, KeyType

MAX_REPORTED = 20
TIMESTAMP = pa.timestamp("us", tz="UTC")

_ARROW_TYPES: dict[FeatureType, pa.DataType] = {
    FeatureType.STRING: pa.string(),
    FeatureType.INT: pa.int64(),
    FeatureType.FLOAT: pa.float64(),
    FeatureType.BOOL: pa.bool_(),
    FeatureType.TIMESTAMP: TIMESTAMP,
}


def feature_arrow_type(feature: Feature) -> pa.DataType:
    if feature.type is FeatureType.VECTOR:
        return pa.list_(pa.float32())
    return _ARROW_TYPES[feature.type]


def group_schema(group: FeatureGroup) -> pa.Schema:
    """The Arrow schema of a group's validated records (without offline bookkeeping)."""
    fields = [
        pa.field(k.name, pa.string() if k.type is KeyType.STRING else pa.int64(), False)
        for k in group.record_identifiers
    ]
    fields.append(pa.field(group.event_time, TIMESTAMP, False))
    fields += [pa.field(f.name, feature_arrow_type(f), f.nullable) for f in group.features]
    return pa.schema(fields)


@dataclass(frozen=True)
class Problem:
    column: str
    message: str
    rows: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "message": self.message, "rows": list(self.rows)}


class BatchInvalid(InvalidInput):
    """A batch failed validation; ``details`` lists the problems and their count."""


def as_arrow(data: Any) -> pa.Table:
    """Accept a pandas DataFrame, an Arrow table or record batch, or a list of dicts."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return _from_frame(data)
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return _from_frame(pd.DataFrame.from_records(data))
    raise InvalidInput(
        "records must be a pandas DataFrame, an Arrow table, or a list of objects",
        field="records",
    )


def _from_frame(frame: pd.DataFrame) -> pa.Table:
    """Arrow from pandas; a column of mixed Python values (``[1, "gusty"]``) becomes text,
    so validation can report exactly which rows do not convert instead of failing whole."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # ints past int64, too
        pass
    arrays = {}
    for name in frame.columns:
        column = frame[name]
        try:
            arrays[str(name)] = pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            arrays[str(name)] = pa.array(
                [None if _missing(v) else str(v) for v in column], pa.string()
            )
    return pa.table(arrays)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def validate_batch(
    group: FeatureGroup,
    table: pa.Table,
    *,
    timezone: str | None = None,
    row_offset: int = 0,
) -> pa.Table:
    """Return ``table`` coerced to the group's schema, or raise :class:`BatchInvalid`.

    ``timezone`` says how to read naive event times (otherwise they are refused: a naive
    timestamp is ambiguous). ``row_offset`` shifts reported row numbers for chunked input.
    """
    tz = _zone(timezone)
    problems: list[Problem] = []
    schema = group_schema(group)
    present = set(table.column_names)
    unknown = sorted(present - set(schema.names))
    if unknown:
        problems.append(Problem(", ".join(unknown), "unknown column(s) for this feature group"))
    columns: dict[str, pa.Array] = {}
    for field in schema:
        if field.name not in present:
            if field.nullable:
                columns[field.name] = pa.nulls(table.num_rows, field.type)
            else:
                problems.append(Problem(field.name, "required column is missing"))
            continue
        raw = table.column(field.name).combine_chunks()
        coerced = _coerce(raw, field, group, tz, row_offset, problems)
        if coerced is not None:
            columns[field.name] = coerced
    if problems:
        _raise(group, problems)
    return pa.table([columns[f.name] for f in schema], schema=schema)


def _zone(timezone: str | None) -> ZoneInfo | None:
    if timezone is None:
        return None
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {timezone!r}", field="timezone") from None


def _rows(mask: pa.Array, offset: int) -> tuple[int, ...]:
    indices = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    return tuple(int(i) + offset for i in indices[:MAX_REPORTED])


def _coerce(
    raw: pa.Array,
    field: pa.Field,
    group: FeatureGroup,
    tz: ZoneInfo | None,
    offset: int,
    problems: list[Problem],
) -> pa.Array | None:
    name = field.name
    if pa.types.is_timestamp(field.type):
        value = _timestamps(raw, name, tz, offset, problems)
    elif pa.types.is_list(field.type):
        value = _vectors(raw, group.feature(name), offset, problems)
    else:
        value = _cast(raw, field.type, name, offset, problems)
    if value is None:
        return None
    nulls = value.is_null()
    if not field.nullable and pc.any(nulls).as_py():
        what = "record identifier" if name in group.key_columns else "non-nullable column"
        if name == group.event_time:
            what = "event time"
        problems.append(Problem(name, f"{what} has null values", _rows(nulls, offset)))
        return None
    if pa.types.is_floating(field.type) and not group.feature(name).allow_nan:
        bad = pc.fill_null(pc.invert(pc.is_finite(value)), False)
        if pc.any(bad).as_py():
            problems.append(Problem(name, "NaN or infinite values", _rows(bad, offset)))
            return None
    return value


def _cast(
    raw: pa.Array, target: pa.DataType, name: str, offset: int, problems: list[Problem]
) -> pa.Array | None:
    if raw.type == target:
        return raw
    if pa.types.is_null(raw.type):
        return pa.nulls(len(raw), target)
    if pa.types.is_floating(raw.type) and pa.types.is_integer(target):
        # pandas turns int columns with nulls into floats; accept whole numbers only.
        finite = pc.fill_null(pc.is_finite(raw), True)
        whole = pc.fill_null(pc.equal(raw, pc.floor(raw)), True)
        bad = pc.invert(pc.and_(finite, whole))
        if pc.any(bad).as_py():
            problems.append(Problem(name, f"values are not {target}", _rows(bad, offset)))
            return None
    if pa.types.is_string(target) and not (
        pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)
    ):
        problems.append(Problem(name, f"expected strings, got {raw.type}"))
        return None
    try:
        return pc.cast(raw, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    bad_rows = []
    for index, value in enumerate(raw.to_pylist()):
        if value is None:
            continue
        try:
            pc.cast(pa.array([value]), target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            bad_rows.append(index + offset)
            if len(bad_rows) >= MAX_REPORTED:
                break
    problems.append(Problem(name, f"values do not convert to {target}", tuple(bad_rows)))
    return None


def _timestamps(
    raw: pa.Array, name: str, tz: ZoneInfo | None, offset: int, problems: list[Problem]
) -> pa.Array | None:
    if pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type):
        series = pd.Series(raw.to_pylist(), dtype=object)
        try:
            parsed = pd.to_datetime(series, errors="coerce", format="ISO8601")
        except ValueError:
            return _mixed_offsets(series, name, tz, offset, problems)
        failed = parsed.isna().to_numpy() & series.notna().to_numpy()
        if failed.any():
            rows = tuple(int(i) + offset for i in np.flatnonzero(failed)[:MAX_REPORTED])
            problems.append(Problem(name, "values are not ISO 8601 timestamps", rows))
            return None
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            utc = parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            raw = pa.array(utc, TIMESTAMP, from_pandas=True)
        else:
            raw = pa.array(parsed.to_numpy(), pa.timestamp("us"), from_pandas=True)
    if not pa.types.is_timestamp(raw.type):
        if pa.types.is_null(raw.type):
            return pa.nulls(len(raw), TIMESTAMP)
        problems.append(Problem(name, f"expected timestamps, got {raw.type}"))
        return None
    if raw.type.tz is None:
        if tz is None:
            problems.append(Problem(name, _NO_ZONE))
            return None
        raw = _localize(raw, tz)
    return pc.cast(raw, TIMESTAMP)


_NO_ZONE = "timestamps have no time zone; pass timezone= or send UTC offsets"


def _localize(naive: pa.Array, tz: ZoneInfo) -> pa.Array:
    return pc.assume_timezone(naive, timezone=str(tz), ambiguous="earliest", nonexistent="earliest")


def _has_offset(value: Any) -> bool:
    try:
        return pd.Timestamp(value).tzinfo is not None
    except (ValueError, TypeError):
        return False  # unparseable: reported as not ISO 8601 already


def _mixed_offsets(
    series: pd.Series, name: str, tz: ZoneInfo | None, offset: int, problems: list[Problem]
) -> pa.Array | None:
    """Strings whose UTC offsets differ from row to row, or that carry one in some rows
    and none in others. A string with an offset is exact in UTC; one without is read in
    ``tz`` or refused, exactly as it would be in a batch of its own — a row's verdict and
    value never depend on its neighbours (streaming ingestion relies on that)."""
    parsed = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
    present = series.notna().to_numpy()
    failed = parsed.isna().to_numpy() & present
    if failed.any():
        rows = tuple(int(i) + offset for i in np.flatnonzero(failed)[:MAX_REPORTED])
        problems.append(Problem(name, "values are not ISO 8601 timestamps", rows))
        return None
    naive = present & ~np.array([_has_offset(v) for v in series], dtype=bool)
    utc = pa.array(parsed.dt.tz_localize(None).to_numpy(), TIMESTAMP, from_pandas=True)
    if not naive.any():
        return utc
    if tz is None:
        rows = tuple(int(i) + offset for i in np.flatnonzero(naive)[:MAX_REPORTED])
        problems.append(Problem(name, _NO_ZONE, rows))
        return None
    local = pd.to_datetime(series[naive], format="ISO8601")
    zoned = _localize(pa.array(local.to_numpy(), pa.timestamp("us")), tz)
    return pc.replace_with_mask(utc, pa.array(naive), pc.cast(zoned, TIMESTAMP))


def _vectors(
    raw: pa.Array, feature: Feature, offset: int, problems: list[Problem]
) -> pa.Array | None:
    target = pa.list_(pa.float32())
    try:
        if pa.types.is_fixed_size_list(raw.type) or pa.types.is_large_list(raw.type):
            raw = raw.cast(pa.list_(raw.type.value_type))
        value = raw.cast(target) if raw.type != target else raw
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        problems.append(Problem(feature.name, f"expected lists of {feature.length} floats"))
        return None
    lengths = pc.list_value_length(value)
    wrong = pc.fill_null(pc.not_equal(lengths, feature.length), False)
    if pc.any(wrong).as_py():
        problems.append(
            Problem(
                feature.name, f"vectors must have length {feature.length}", _rows(wrong, offset)
            )
        )
        return None
    if not feature.allow_nan:
        flat = pc.list_flatten(value)
        if len(flat) and not pc.all(pc.is_finite(flat)).as_py():
            problems.append(Problem(feature.name, "vectors contain NaN or infinite values"))
            return None
    return value


def _raise(group: FeatureGroup, problems: list[Problem]) -> None:
    first = problems[0]
    rows = f" (rows {', '.join(map(str, first.rows[:5]))})" if first.rows else ""
    more = f"; {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    raise BatchInvalid(
        f"batch for feature group {group.name!r} is invalid: column {first.column!r}:"
        f" {first.message}{rows}{more}. Nothing was written.",
        field=first.column or "records",  # a column named "" is named by its container
        details={
            "count": len(problems),
            "problems": [p.to_dict() for p in problems[:MAX_REPORTED]],
        },
    )
