"""Retention: what Slipway deletes when it is old, and what it never deletes.

One module per kind of data — captured traffic (:mod:`.capture`), Delta versions
(:mod:`.delta`), work items (:mod:`.queue`), events (:mod:`.events`), audit rows
(:mod:`.audit`), deleted MLflow runs (:mod:`.runs`) — each deciding both halves: what is
old, and what something still needs. :class:`GarbageCollector` runs them under the
``retention`` settings and returns a :class:`GcReport`.

:class:`GarbageCollector` loads on first use (it brings every kind's backends: the
database, Delta, MLflow), so the kinds and the report stay light to import, as
``slipway gc --help`` needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slipway.retention.report import KINDS, GcReport, KindReport

if TYPE_CHECKING:
    from slipway.retention.gc import GarbageCollector


def __getattr__(name: str) -> Any:
    if name != "GarbageCollector":
        raise AttributeError(f"module 'slipway.retention' has no attribute {name!r}")
    from slipway.retention.gc import GarbageCollector  # lazy: module docstring

    globals()[name] = GarbageCollector  # once: later lookups are plain attribute reads
    return GarbageCollector


__all__ = ["KINDS", "GarbageCollector", "GcReport", "KindReport"]
