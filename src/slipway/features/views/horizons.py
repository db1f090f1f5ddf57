"""How long the online store keeps each group's events: its window horizon.

A group aggregated by a window of any feature view (any version: a model may be served
from an older one) keeps, per key, the events within the longest such window of the key's
newest event. Ingestion asks for a group's horizon on every batch, after the batch is
committed offline, and the answer is never stale: one small query per batch (how many
view versions exist, and the newest's time) says whether the parsed horizons still hold.
That ordering is what makes defining a view safe while other processes ingest: defining
it commits the view, then backfills the event log from the offline store
(:meth:`FeatureViews.apply`); an ingestion committed offline before that read is in the
backfill, one committed after it reads the new horizon and appends its own events. (Its
prune may still use the old horizon if its horizon read fell just before the view's
commit: a window of milliseconds, closed by defining the view again or
:meth:`FeatureViews.backfill`.)
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import func, select

from slipway.core.db.engine import Database
from slipway.features.views.spec import WindowSpec
from slipway.features.views.tables import FeatureViewRow


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
    """:func:`window_horizons` of one workspace, parsed again only when the views' table
    changed; callable as ingestion's ``horizons``."""

    def __init__(self, db: Database, workspace: str) -> None:
        self.db = db
        self.workspace = workspace
        self._lock = threading.Lock()
        self._horizons: dict[str, int] = {}
        self._stamp: tuple[int, datetime | None] | None = None

    def _current_stamp(self) -> tuple[int, datetime | None]:
        with self.db.session() as session:
            count, newest = session.execute(
                select(func.count(), func.max(FeatureViewRow.created_at)).where(
                    FeatureViewRow.workspace == self.workspace
                )
            ).one()
        return int(count), newest

    def __call__(self, group: str) -> int | None:
        with self._lock:
            stamp = self._current_stamp()
            if stamp != self._stamp:
                self._horizons = window_horizons(self.db, self.workspace)
                self._stamp = stamp
            return self._horizons.get(group)

    def forget(self) -> None:
        """Parse the table again on the next call."""
        with self._lock:
            self._stamp = None
