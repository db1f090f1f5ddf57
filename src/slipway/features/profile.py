"""What a person looking at a feature group wants to know about its data: how fresh it is,
how many records it holds, and what the latest ingestion looked like feature by feature.

The figures stored with each ingestion (:mod:`slipway.features.stats`) are merged chunk by
chunk and so cannot hold a histogram, whose bins depend on the whole range. A profile is
therefore computed when asked, from the ingestion's own rows in the offline table (found by
their ``_ingest_id``, which the files' statistics make a small scan), at most
:data:`SAMPLE_ROWS` of them; an online-only group falls back to the stored figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slipway.features.definitions import Feature, FeatureGroup, FeatureType
from slipway.features.resources import Ingest

# Rows of one ingestion read to profile it: enough for stable shares, bounded memory.
SAMPLE_ROWS = 100_000
BINS = 10
TOP_CATEGORIES = 10


@dataclass(frozen=True)
class GroupActivity:
    """A group's succeeded ingestions at a glance: how many, how many rows they wrote,
    when the last one finished and the newest event time any of them carried."""

    group: str
    ingests: int = 0
    rows_ingested: int = 0
    last_ingest_at: datetime | None = None
    newest_event_time: datetime | None = None


@dataclass(frozen=True)
class GroupSummary:
    """What a list of groups shows per group: its activity and its record count —
    the online store's keys for an online group, else the offline table's rows."""

    activity: GroupActivity
    records: int | None
    records_kind: str  # "online" (keys in the online store) or "offline" (rows)


@dataclass(frozen=True)
class Histogram:
    """Counts of values in ``[edges[i], edges[i + 1])`` (the last bin closed)."""

    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class FeatureProfile:
    """One feature in one ingestion: values present and missing; numbers get their
    mean, extremes and histogram; strings and booleans their most common values."""

    name: str
    type: str
    count: int
    missing: int
    mean: float | None = None
    minimum: Any = None
    maximum: Any = None
    distinct: int | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    histogram: Histogram | None = None


@dataclass(frozen=True)
class IngestProfile:
    """The profile of one ingestion. ``profiled`` rows were read from the offline table
    (0 when the figures are the ones stored with the ingestion, without histograms)."""

    ingest: Ingest
    profiled: int
    features: list[FeatureProfile]

    @property
    def sampled(self) -> bool:
        """Whether fewer rows were read than the ingestion wrote."""
        return 0 < self.profiled < self.ingest.rows


def profile_table(
    group: FeatureGroup, table: pa.Table, *, bins: int = BINS
) -> list[FeatureProfile]:
    """Each feature of ``group`` in ``table`` (a feature the table lacks counts as missing
    throughout: it was added to the group after these rows were written)."""
    return [_profile(feature, table, bins) for feature in group.features]


def _profile(feature: Feature, table: pa.Table, bins: int) -> FeatureProfile:
    kind = feature.type.value
    if feature.name not in table.column_names:
        return FeatureProfile(feature.name, kind, 0, table.num_rows)
    column = table.column(feature.name)
    missing = column.null_count
    count = len(column) - missing
    if count == 0:
        return FeatureProfile(feature.name, kind, 0, missing)
    if feature.type in (FeatureType.INT, FeatureType.FLOAT):
        values = column.drop_null().to_numpy().astype(np.float64)
        finite = values[np.isfinite(values)]
        if not finite.size:
            return FeatureProfile(feature.name, kind, count, missing)
        low, high = float(finite.min()), float(finite.max())
        extremes = (int(low), int(high)) if feature.type is FeatureType.INT else (low, high)
        return FeatureProfile(
            feature.name,
            kind,
            count,
            missing,
            mean=float(finite.mean()),
            minimum=extremes[0],
            maximum=extremes[1],
            histogram=_histogram(finite, integer=feature.type is FeatureType.INT, bins=bins),
        )
    if feature.type in (FeatureType.STRING, FeatureType.BOOL):
        counted = pc.value_counts(column.drop_null()).to_pylist()
        ranked = sorted(counted, key=lambda c: (-c["counts"], str(c["values"])))
        return FeatureProfile(
            feature.name,
            kind,
            count,
            missing,
            distinct=len(counted),
            top=[(str(c["values"]), int(c["counts"])) for c in ranked[:TOP_CATEGORIES]],
        )
    if feature.type is FeatureType.TIMESTAMP:
        extremes = pc.min_max(column)
        return FeatureProfile(
            feature.name,
            kind,
            count,
            missing,
            minimum=extremes["min"].as_py(),
            maximum=extremes["max"].as_py(),
        )
    return FeatureProfile(feature.name, kind, count, missing)  # vectors: presence only


def _histogram(values: np.ndarray, *, integer: bool, bins: int) -> Histogram:
    """Equal-width bins over the values' range; integers spanning fewer values than
    ``bins`` get one bin per value, so each bar is a value."""
    low, high = float(values.min()), float(values.max())
    if integer and high - low + 1 <= bins:
        edges = np.arange(low, high + 2)
    elif low == high:
        edges = np.array([low - 0.5, high + 0.5])
    else:
        edges = np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    return Histogram([float(e) for e in edges], [int(c) for c in counts])


def stored_profile(group: FeatureGroup, ingest: Ingest) -> list[FeatureProfile]:
    """The figures stored with ``ingest`` (nulls; mean, min and max of numbers), for a
    group whose rows are not in an offline table."""
    stored = ingest.stats.get("features", {})
    profiles = []
    for feature in group.features:
        entry = stored.get(feature.name, {})
        missing = int(entry.get("nulls", ingest.rows))
        mean = entry.get("mean")
        profiles.append(
            FeatureProfile(
                feature.name,
                feature.type.value,
                max(0, ingest.rows - missing),
                missing,
                mean=float(mean) if mean is not None and math.isfinite(mean) else None,
                minimum=entry.get("min"),
                maximum=entry.get("max"),
            )
        )
    return profiles
