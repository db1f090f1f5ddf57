"""Retention: what Slipway deletes when it is old, and what it never deletes.

One module per kind of data — captured traffic (:mod:`.capture`), Delta versions
(:mod:`.delta`), work items (:mod:`.queue`), events (:mod:`.events`), audit rows
(:mod:`.audit`), deleted MLflow runs (:mod:`.runs`) — each deciding both halves: what is
old, and what something still needs. :class:`GarbageCollector` runs them under the
``retention`` settings and returns a :class:`GcReport`.
"""

from slipway.retention.gc import GarbageCollector
from slipway.retention.report import KINDS, GcReport, KindReport

__all__ = ["KINDS", "GarbageCollector", "GcReport", "KindReport"]
