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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _GroupWindows:
    """The windows of a view over one group, and what reading them takes."""

    group: FeatureGroup
    windows: list[tuple[str, WindowSpec]]  # (output name, window), in the view's order
    longest_us: int  # events older than the read's time minus this are never needed
    columns: list[str]  # the group's features the windows aggregate


@dataclass
class OnlineColumns:
    """A view's columns for some entity rows: every output column in the view's order,
    the request fields as the transformations read them (converted to their declared
    types), and the rows whose stored features were missing or stale (row -> feature
    names)."""

    arrays: dict[str, pa.Array]
    request: dict[str, pa.Array]
    absent: dict[int, list[str]]
    length: int

    def rows(self) -> list[dict[str, Any]]:
        """One dict per entity row (the shape of :func:`read_online`)."""
        if not self.arrays:
            return [{} for _ in range(self.length)]
        names = list(self.arrays)
        lists = [array.to_pylist() for array in self.arrays.values()]
        return [dict(zip(names, values, strict=True)) for values in zip(*lists, strict=True)]


class OnlineView:
    """One view version, compiled for reading online: its windows grouped by the group
    they aggregate, its row-level transformations compiled (and Python functions
    imported) once. A reader that serves many requests — the gateway's enrichment —
    builds one when it loads the view and calls :meth:`read` per request;
    :func:`read_online` builds one per call. Either way the same code computes every
    value."""

    def __init__(
        self,
        view: FeatureView,
        groups: Mapping[str, FeatureGroup],
        *,
        resolve_python: bool = True,
    ) -> None:
        self.view = view
        spec = view.spec
        self.features = list(spec.features)
        self.request_fields = dict(spec.request_fields)
        self.windows: list[_GroupWindows] = []
        for group_name, windows in _windows(spec).items():
            group = groups.get(group_name)
            if group is None:
                raise InvalidInput(f"feature group {group_name!r} does not exist", field="view")
            if not group.online:
                raise InvalidInput(
                    f"feature group {group_name!r} is offline-only: its windows cannot be read"
                    " online",
                    field="view",
                )
            self.windows.append(
                _GroupWindows(
                    group,
                    windows,
                    max(round(w.duration.total_seconds() * 1_000_000) for _, w in windows),
                    sorted({w.column for _, w in windows if w.column is not None}),
                )
            )
        self.transforms = RowTransforms(spec, resolve_python=resolve_python)
        types = {**view.columns, **spec.request_fields}
        self._arrow = {name: _ARROW.get(kind) for name, kind in types.items()}
        self._types = types
        #: the view's output columns, in its order
        self.outputs = list(view.columns)

    def read(
        self,
        online: OnlineStore,
        stored: StoredReader,
        rows: Sequence[Mapping[str, Any]],
        at_us: int,
    ) -> OnlineColumns:
        """Every output column for each of ``rows`` (entity keys and request fields),
        windows ending at ``at_us`` (microseconds since the epoch): one read of the
        stored features for all the rows, one of each group's events, the row-level
        transformations once over all of them."""
        columns: dict[str, list[Any]] = {}
        absent: dict[int, list[str]] = {}
        if self.features:
            vectors = stored(self.features, rows)
            names = list(vectors[0].values) if vectors else []
            for name in names:
                columns[name] = [vector.values.get(name) for vector in vectors]
            for index, vector in enumerate(vectors):
                if vector.missing or vector.stale:
                    absent[index] = vector.missing + vector.stale
        for reading in self.windows:
            keys = _encoded_keys(reading.group, rows)
            events = online.read_events(reading.group.name, keys, at_us - reading.longest_us, at_us)
            decoded = [DecodedEvents(found, reading.group, reading.columns) for found in events]
            for name, window in reading.windows:
                columns[name] = [aggregate(window, each, at_us) for each in decoded]
        for field in self.request_fields:
            if any(field not in row for row in rows):
                raise InvalidInput(
                    f"the request has no {field!r}, which the view needs", field=field
                )
            columns[field] = [row[field] for row in rows]
        arrays: dict[str, pa.Array] = {}
        for name, values in columns.items():
            try:
                arrays[name] = pa.array(values, type=self._arrow.get(name))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                raise InvalidInput(
                    f"{name!r} must hold {self._types.get(name, 'values of one type')}",
                    field=name,
                ) from None
        arrays = self.transforms.apply(arrays, length=len(rows))
        return OnlineColumns(
            {name: arrays[name] for name in self.outputs if name in arrays},
            {name: arrays[name] for name in self.request_fields},
            absent,
            len(rows),
        )


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
    if at is not None and at.tzinfo is None:
        raise InvalidInput("at needs a time zone", field="at")
    reader = OnlineView(view, groups)
    return reader.read(online, stored, rows, micros(at or utcnow())).rows()
