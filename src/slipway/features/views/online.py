"""Reading a feature view online: stored features, window aggregates and row-level
transformations for entity rows (with their request fields), at a time.

The same definitions as a training set, computed the way the offline path does: stored
features as the online store holds them (the newest record per key), windows over the
key's events kept in the online event log (:mod:`slipway.features.views.window_eval`),
then the row-level transformations through the one implementation both paths call
(:class:`~slipway.features.views.rows.RowTransforms`), over all the rows at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.features.codec import micros
from slipway.features.definitions import FeatureGroup
from slipway.features.online.base import OnlineStore
from slipway.features.online_reads import FeatureVector, _encoded_keys
from slipway.features.views.resources import FeatureView
from slipway.features.views.rows import RowTransforms
from slipway.features.views.spec import FeatureViewSpec, WindowSpec
from slipway.features.views.window_eval import DecodedEvents, aggregate

# Reads the stored features of a view: FeatureStore.get_online_features.
StoredReader = Callable[[list[str], Sequence[Mapping[str, Any]]], list[FeatureVector]]

_ARROW = {"float": pa.float64(), "int": pa.int64(), "string": pa.string(), "bool": pa.bool_()}


def _windows(spec: FeatureViewSpec) -> dict[str, list[tuple[str, WindowSpec]]]:
    """The view's windows by the group they aggregate, in the view's order."""
    by_group: dict[str, list[tuple[str, WindowSpec]]] = {}
    for transformation in spec.transformations:
        if transformation.window is not None:
            by_group.setdefault(transformation.window.group, []).append(
                (transformation.name, transformation.window)
            )
    return by_group


def read_online(
    view: FeatureView,
    groups: Mapping[str, FeatureGroup],
    online: OnlineStore,
    stored: StoredReader,
    rows: Sequence[Mapping[str, Any]],
    *,
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every output column of ``view`` for each of ``rows`` (entity keys and request
    fields), with windows ending at ``at`` (now by default)."""
    spec = view.spec
    if at is not None and at.tzinfo is None:
        raise InvalidInput("at needs a time zone", field="at")
    at_us = micros(at or utcnow())
    columns: dict[str, list[Any]] = {}
    if spec.features:
        vectors = stored(list(spec.features), rows)
        names = list(vectors[0].values) if vectors else []
        for name in names:
            columns[name] = [vector.values.get(name) for vector in vectors]
    for group_name, windows in _windows(spec).items():
        group = groups[group_name]
        if not group.online:
            raise InvalidInput(
                f"feature group {group_name!r} is offline-only: its windows cannot be read online",
                field="view",
            )
        longest = max(round(w.duration.total_seconds() * 1_000_000) for _, w in windows)
        keys = _encoded_keys(group, rows)
        events = online.read_events(group_name, keys, at_us - longest, at_us)
        wanted = sorted({w.column for _, w in windows if w.column is not None})
        decoded = [DecodedEvents(found, group, wanted) for found in events]
        for name, window in windows:
            columns[name] = [aggregate(window, each, at_us) for each in decoded]
    types = {**view.columns, **spec.request_fields}
    for field in spec.request_fields:
        if any(field not in row for row in rows):
            raise InvalidInput(f"the request has no {field!r}, which the view needs", field=field)
        columns[field] = [row[field] for row in rows]
    transforms = RowTransforms(spec)
    arrays: dict[str, pa.Array] = {}
    for name, values in columns.items():
        try:
            arrays[name] = pa.array(values, type=_ARROW.get(types.get(name, "")))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            raise InvalidInput(
                f"{name!r} must hold {types.get(name, 'values of one type')}", field=name
            ) from None
    arrays = transforms.apply(arrays)
    outputs = [name for name in view.columns if name in arrays]
    return [{name: arrays[name][index].as_py() for name in outputs} for index in range(len(rows))]
