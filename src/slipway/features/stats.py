"""Per-ingest statistics: rows, nulls per feature, min / max / mean of numeric features.

Computed chunk by chunk and merged, so a file larger than memory gets exact figures.
The console shows them and monitoring uses them as a cheap first look at drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from slipway.features.definitions import FeatureGroup, FeatureType

_NUMERIC = {FeatureType.INT, FeatureType.FLOAT}


@dataclass
class _Column:
    nulls: int = 0
    count: int = 0
    total: float = 0.0
    minimum: Any = None
    maximum: Any = None


@dataclass
class IngestStats:
    group: FeatureGroup
    rows: int = 0
    min_event_time: Any = None
    max_event_time: Any = None
    columns: dict[str, _Column] = field(default_factory=dict)

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        if table.num_rows == 0:
            return
        times = pc.min_max(table.column(self.group.event_time))
        low, high = times["min"].as_py(), times["max"].as_py()
        self.min_event_time = low if self.min_event_time is None else min(self.min_event_time, low)
        self.max_event_time = (
            high if self.max_event_time is None else max(self.max_event_time, high)
        )
        for feature in self.group.features:
            column = table.column(feature.name)
            stats = self.columns.setdefault(feature.name, _Column())
            stats.nulls += column.null_count
            if feature.type not in _NUMERIC:
                continue
            valid = len(column) - column.null_count
            if valid == 0:
                continue
            extremes = pc.min_max(column)
            low, high = extremes["min"].as_py(), extremes["max"].as_py()
            stats.minimum = low if stats.minimum is None else min(stats.minimum, low)
            stats.maximum = high if stats.maximum is None else max(stats.maximum, high)
            stats.total += float(pc.sum(column).as_py() or 0)
            stats.count += valid

    def to_dict(self) -> dict[str, Any]:
        features: dict[str, Any] = {}
        for name, stats in self.columns.items():
            entry: dict[str, Any] = {"nulls": stats.nulls}
            if stats.count:
                entry |= {
                    "min": stats.minimum,
                    "max": stats.maximum,
                    "mean": stats.total / stats.count,
                }
            features[name] = entry
        return {
            "rows": self.rows,
            "min_event_time": _iso(self.min_event_time),
            "max_event_time": _iso(self.max_event_time),
            "features": features,
        }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
