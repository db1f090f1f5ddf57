"""Encoding record identifiers as keys and feature values as online payloads.

Keys: a single-column identifier is its value as text; a composite one is the compact JSON
array of its values, so ``("JFK", 3)`` and ``("JFK3",)`` can never collide.

Payloads: the JSON array of a record's feature values in the group's feature order, with
timestamps as microseconds since the epoch. Order-based arrays are compact and survive
schema evolution, because features are only ever appended: a payload written before a
feature existed is simply shorter, and the missing tail reads as null.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from slipway.features.definitions import FeatureGroup, FeatureType

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_key(values: Sequence[Any]) -> str:
    if len(values) == 1:
        return str(values[0])
    return orjson.dumps(list(values)).decode()


def keys_of(group: FeatureGroup, table: pa.Table) -> list[str]:
    """The encoded key of every row of a validated table."""
    columns = [table.column(name).to_pylist() for name in group.key_columns]
    if len(columns) == 1:
        return [str(v) for v in columns[0]]
    return [orjson.dumps(list(row)).decode() for row in zip(*columns, strict=True)]


def micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def payloads_of(group: FeatureGroup, table: pa.Table) -> list[bytes]:
    """The online payload of every row of a validated table."""
    columns = []
    for feature in group.features:
        column = table.column(feature.name)
        if feature.type is FeatureType.TIMESTAMP:
            column = column.cast(pa.int64())
        columns.append(column.to_pylist())
    return [orjson.dumps(row) for row in zip(*columns, strict=True)]


def decode_payload(group: FeatureGroup, payload: bytes) -> dict[str, Any]:
    values = orjson.loads(payload)
    out: dict[str, Any] = {}
    for index, feature in enumerate(group.features):
        value = values[index] if index < len(values) else None
        if value is not None and feature.type is FeatureType.TIMESTAMP:
            value = from_micros(value)
        out[feature.name] = value
    return out
