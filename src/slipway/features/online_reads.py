"""Reading the online store: records, many records, and feature vectors across groups.

A value whose record is older than the group's TTL comes back null and is flagged stale,
so a model never silently serves on stale features. ``get_online_features`` reads every
group in one call to the backend (one round trip on Redis).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.features.codec import decode_payload, encode_key, from_micros, micros
from slipway.features.definitions import FeatureGroup, FeatureType, KeyType
from slipway.features.offline.training import resolve_refs
from slipway.features.online.base import OnlineStore, StoredRecord
from slipway.features.refs import FeatureRef


@dataclass(frozen=True)
class OnlineRecord:
    """A record as read from the online store."""

    key: dict[str, Any]
    event_time: datetime
    values: dict[str, Any]
    stale: bool


@dataclass(slots=True)
class FeatureVector:
    """One entity row's features; ``missing`` and ``stale`` name the affected features.

    Not frozen: a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, which cost a fifth of a 100-entity read."""

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


def _encoded_keys(group: FeatureGroup, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The encoded key of every entity row. One record identifier of the right type (the
    common case) is read directly; anything else goes through :func:`key_values`, which
    coerces and reports."""
    identifiers = group.record_identifiers
    if len(identifiers) == 1:
        column, kind = identifiers[0].name, identifiers[0].type
        wanted: type = int if kind is KeyType.INT else str
        out: list[str] = []
        for index, row in enumerate(rows):
            # type() before isinstance(): a Mapping check is an ABC check, slow per row.
            value = row.get(column) if type(row) is dict or isinstance(row, Mapping) else None
            if type(value) is wanted:
                out.append(str(value))
            else:
                out.append(encode_key(key_values(group, row, field=f"entity_rows[{index}]")))
        return out
    return [
        encode_key(key_values(group, row, field=f"entity_rows[{i}]")) for i, row in enumerate(rows)
    ]


@dataclass(frozen=True)
class _Pick:
    """Where a group's wanted features sit in its stored payload, and their output names."""

    group: FeatureGroup
    names: list[str]
    positions: list[int]
    timestamps: list[bool]


def _picks(
    groups: dict[str, FeatureGroup], wanted: dict[str, list[str]], full_feature_names: bool
) -> list[_Pick]:
    picks = []
    for name, features in wanted.items():
        group = groups[name]
        index = {f.name: i for i, f in enumerate(group.features)}
        picks.append(
            _Pick(
                group,
                [f"{name}__{f}" if full_feature_names else f for f in features],
                [index[f] for f in features],
                [group.features[index[f]].type is FeatureType.TIMESTAMP for f in features],
            )
        )
    return picks


# Parsed reads by (refs, full names): resolving refs is most of a one-entity read's time. A
# plan is reused only while it was made from the very definitions the caller passes (the
# store caches those for a moment), so a changed group is re-planned at once.
_PLANS: dict[tuple[tuple[str, ...], bool], list[_Pick]] = {}
_MAX_PLANS = 1024


def _plan(
    groups: dict[str, FeatureGroup], refs: list[str], full_feature_names: bool
) -> list[_Pick]:
    key = (tuple(refs), full_feature_names)
    picks = _PLANS.get(key)
    if picks is not None and all(groups.get(p.group.name) is p.group for p in picks):
        return picks
    picks = _picks(groups, resolve_refs(refs, groups), full_feature_names)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = picks
    return picks


@functools.lru_cache(maxsize=4096)
def ref_groups(refs: tuple[str, ...]) -> tuple[str, ...]:
    """The group of each feature reference (parsed once per distinct list)."""
    return tuple(FeatureRef.parse(ref).group for ref in refs)


def online_features(
    store: OnlineStore,
    groups: dict[str, FeatureGroup],
    refs: list[str],
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    full_feature_names: bool = False,
) -> list[FeatureVector]:
    picks = _plan(groups, refs, full_feature_names)
    found = store.read({p.group.name: _encoded_keys(p.group, entity_rows) for p in picks})
    now_us = micros(utcnow())
    # Per group: each row's values (or None when missing / stale), decoded once.
    columns: list[list[list[Any] | None]] = []
    flags: list[list[str | None]] = []
    for pick in picks:
        ttl_us = pick.group.ttl.total_seconds() * 1e6 if pick.group.ttl is not None else None
        width = len(pick.group.features)
        whole = pick.positions == list(range(width))
        stamps = any(pick.timestamps)
        decoded: list[list[Any] | None] = []
        why: list[str | None] = []
        for record in found[pick.group.name]:
            if record is None:
                decoded.append(None)
                why.append("missing")
                continue
            if ttl_us is not None and now_us - record.event_time_us > ttl_us:
                decoded.append(None)
                why.append("stale")
                continue
            stored = orjson.loads(record.payload)
            if whole and len(stored) == width:
                values = stored  # every feature, in stored order: nothing to pick
            else:
                size = len(stored)
                values = [stored[i] if i < size else None for i in pick.positions]
            if stamps:
                values = [
                    from_micros(v) if ts and v is not None else v
                    for v, ts in zip(values, pick.timestamps, strict=True)
                ]
            decoded.append(values)
            why.append(None)
        columns.append(decoded)
        flags.append(why)
    if len(picks) == 1:
        return _single_group_vectors(picks[0], columns[0], flags[0])
    vectors = []
    for row in range(len(entity_rows)):
        out: dict[str, Any] = {}
        missing: list[str] = []
        stale: list[str] = []
        for pick, decoded, why in zip(picks, columns, flags, strict=True):
            picked = decoded[row]
            if picked is None:
                out.update(dict.fromkeys(pick.names))
                (missing if why[row] == "missing" else stale).extend(pick.names)
            else:
                out.update(zip(pick.names, picked, strict=True))
        vectors.append(FeatureVector(out, missing, stale))
    return vectors


def _single_group_vectors(
    pick: _Pick, decoded: list[list[Any] | None], why: list[str | None]
) -> list[FeatureVector]:
    """The vectors of a read from one group (the common case), without the merging."""
    names = pick.names
    vectors = []
    for picked, reason in zip(decoded, why, strict=True):
        if picked is None:
            absent = list(names)
            vectors.append(
                FeatureVector(
                    dict.fromkeys(names),
                    absent if reason == "missing" else [],
                    absent if reason != "missing" else [],
                )
            )
        else:
            vectors.append(FeatureVector(dict(zip(names, picked, strict=True)), [], []))
    return vectors
