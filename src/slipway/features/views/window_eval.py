"""Window aggregations over a key's events as the online store keeps them.

The online half of a window's semantics (the offline half is DuckDB SQL in
:mod:`slipway.features.offline.windows`; property tests hold the two equal): for a read
at time ``t``, the events of the key with ``t - duration <= event_time <= t``. ``count``
counts those events; ``sum``, ``mean``, ``min`` and ``max`` take their non-null values
(null when there are none); ``last`` is the value of the latest one (null when the window
is empty). The online store keeps one event per (key, event time) — a re-ingested record
replaces the earlier one — so no two events tie.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

import orjson

from slipway.features.definitions import FeatureGroup
from slipway.features.online.base import StoredRecord
from slipway.features.views.spec import WindowSpec


class DecodedEvents:
    """A key's events, decoded once for every window over them: times ascending, and
    each wanted column's values in the same order."""

    __slots__ = ("times", "values")

    def __init__(
        self, events: Sequence[StoredRecord], group: FeatureGroup, columns: Sequence[str]
    ) -> None:
        positions = {f.name: i for i, f in enumerate(group.features)}
        wanted = [(name, positions[name]) for name in columns]
        self.times = [event.event_time_us for event in events]
        self.values: dict[str, list[Any]] = {name: [] for name in columns}
        for event in events:
            row = orjson.loads(event.payload)
            for name, position in wanted:
                self.values[name].append(row[position] if position < len(row) else None)


def _bounds(times: Sequence[int], since_us: int, until_us: int) -> tuple[int, int]:
    """The slice of ``times`` (ascending) within ``[since_us, until_us]``."""
    return bisect_left(times, since_us), bisect_right(times, until_us)


def aggregate(window: WindowSpec, events: DecodedEvents, at_us: int) -> Any:
    """The window's value for a read at ``at_us`` (microseconds since the epoch)."""
    duration_us = round(window.duration.total_seconds() * 1_000_000)
    start, end = _bounds(events.times, at_us - duration_us, at_us)
    if window.function == "count":
        return end - start
    assert window.column is not None  # the spec requires one for every other function
    in_window = events.values[window.column][start:end]
    if window.function == "last":
        return in_window[-1] if in_window else None
    present = [v for v in in_window if v is not None]
    if not present:
        return None
    if window.function == "sum":
        return float(sum(present))
    if window.function == "mean":
        return float(sum(present)) / len(present)
    if window.function == "min":
        return min(present)
    return max(present)
