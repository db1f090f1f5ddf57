"""Reading the online store: records, many records, and feature vectors across groups.

A value whose record is older than the group's TTL comes back null and is flagged stale,
so a model never silently serves on stale features. ``get_online_features`` reads every
group in one call to the backend (one round trip on Redis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.features.codec import decode_payload, encode_key, from_micros, micros
from slipway.features.definitions import FeatureGroup, KeyType
from slipway.features.offline.training import resolve_refs
from slipway.features.online.base import OnlineStore, StoredRecord


@dataclass(frozen=True)
class OnlineRecord:
    """A record as read from the online store."""

    key: dict[str, Any]
    event_time: datetime
    values: dict[str, Any]
    stale: bool


@dataclass(frozen=True)
class FeatureVector:
    """One entity row's features; ``missing`` and ``stale`` name the affected features."""

    values: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


def key_values(
    group: FeatureGroup, row: Mapping[str, Any] | Sequence[Any], *, field: str
) -> list[Any]:
    """The record-identifier values of ``row`` (a mapping or a tuple), typed and checked."""
    if isinstance(row, Mapping):
        missing = [k for k in group.key_columns if row.get(k) is None]
        if missing:
            raise InvalidInput(
                f"{field} lacks {', '.join(missing)} (record identifier of {group.name!r})",
                field=field,
            )
        values = [row[k] for k in group.key_columns]
    else:
        values = list(row) if not isinstance(row, str | int) else [row]
        if len(values) != len(group.key_columns):
            raise InvalidInput(
                f"{field} needs {len(group.key_columns)} value(s): {', '.join(group.key_columns)}",
                field=field,
            )
    typed = []
    for spec, value in zip(group.record_identifiers, values, strict=True):
        if spec.type is KeyType.INT:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InvalidInput(f"{spec.name} must be an integer", field=spec.name)
            try:
                value = int(value)
            except ValueError:
                raise InvalidInput(f"{spec.name} must be an integer", field=spec.name) from None
        elif not isinstance(value, str):
            raise InvalidInput(f"{spec.name} must be a string", field=spec.name)
        typed.append(value)
    return typed


def _is_stale(group: FeatureGroup, record: StoredRecord, now_us: int) -> bool:
    return group.ttl is not None and now_us - record.event_time_us > group.ttl.total_seconds() * 1e6


def read_records(
    store: OnlineStore, group: FeatureGroup, rows: Sequence[Mapping[str, Any] | Sequence[Any]]
) -> list[OnlineRecord | None]:
    keys = [key_values(group, row, field="keys") for row in rows]
    found = store.read({group.name: [encode_key(k) for k in keys]})[group.name]
    now_us = micros(utcnow())
    out: list[OnlineRecord | None] = []
    for key, record in zip(keys, found, strict=True):
        if record is None:
            out.append(None)
            continue
        stale = _is_stale(group, record, now_us)
        values = decode_payload(group, record.payload)
        if stale:
            values = dict.fromkeys(values)
        out.append(
            OnlineRecord(
                key=dict(zip(group.key_columns, key, strict=True)),
                event_time=from_micros(record.event_time_us),
                values=values,
                stale=stale,
            )
        )
    return out


def online_features(
    store: OnlineStore,
    groups: dict[str, FeatureGroup],
    refs: list[str],
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    full_feature_names: bool = False,
) -> list[FeatureVector]:
    wanted = resolve_refs(refs, groups)
    requests: dict[str, list[str]] = {}
    for name in wanted:
        group = groups[name]
        requests[name] = [
            encode_key(key_values(group, row, field=f"entity_rows[{i}]"))
            for i, row in enumerate(entity_rows)
        ]
    found = store.read(requests)
    now_us = micros(utcnow())
    vectors = []
    for index in range(len(entity_rows)):
        values: dict[str, Any] = {}
        missing: list[str] = []
        stale: list[str] = []
        for name, features in wanted.items():
            group = groups[name]
            record = found[name][index]
            names = [f"{name}__{f}" if full_feature_names else f for f in features]
            if record is None:
                values.update(dict.fromkeys(names))
                missing.extend(names)
                continue
            if _is_stale(group, record, now_us):
                values.update(dict.fromkeys(names))
                stale.extend(names)
                continue
            decoded = decode_payload(group, record.payload)
            for out, feature in zip(names, features, strict=True):
                values[out] = decoded[feature]
        vectors.append(FeatureVector(values, missing, stale))
    return vectors
