"""How long the online store keeps each group's events: its window horizon.

A group aggregated by a window of any feature view (any version: a model may be served
from an older one) keeps, per key, the events within the longest such window of the key's
newest event. Ingestion asks for a group's horizon on every batch; the answer is read
from the views' table and cached for a moment, so a view defined in another process
takes effect on ingestion within :data:`CACHE_SECONDS`, and defining the view backfills
the event log from the offline store (see :meth:`FeatureViews.apply`).
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from slipway.core.db.engine import Database
from slipway.features.views.spec import WindowSpec
from slipway.features.views.tables import FeatureViewRow

CACHE_SECONDS = 1.0


def window_horizons(db: Database, workspace: str) -> dict[str, int]:
    """Group -> horizon in microseconds, over every version of every view of the
    workspace."""
    horizons: dict[str, int] = {}
    with db.session() as session:
        specs = session.scalars(
            select(FeatureViewRow.spec).where(FeatureViewRow.workspace == workspace)
        ).all()
    for spec in specs:
        for transformation in spec.get("transformations") or []:
            window = transformation.get("window")
            if not window:
                continue
            parsed = WindowSpec.model_validate(window)
            micros = round(parsed.duration.total_seconds() * 1_000_000)
            horizons[parsed.group] = max(horizons.get(parsed.group, 0), micros)
    return horizons


class HorizonCache:
    """:func:`window_horizons` of one workspace, read at most once per
    :data:`CACHE_SECONDS`; callable as ingestion's ``horizons``."""

    def __init__(self, db: Database, workspace: str) -> None:
        self.db = db
        self.workspace = workspace
        self._lock = threading.Lock()
        self._horizons: dict[str, int] = {}
        self._read_at = float("-inf")

    def __call__(self, group: str) -> int | None:
        with self._lock:
            if time.monotonic() - self._read_at > CACHE_SECONDS:
                self._horizons = window_horizons(self.db, self.workspace)
                self._read_at = time.monotonic()
            return self._horizons.get(group)

    def forget(self) -> None:
        """Read the table again on the next call (this process just defined a view)."""
        with self._lock:
            self._read_at = float("-inf")
