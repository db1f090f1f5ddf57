"""The garbage collector: every kind of retention in one pass, with one typed report.

Each kind runs only when its age is set in ``retention`` (``None`` keeps it for ever) and
only when asked for (``only``); a dry run reports what would go without deleting
anything. Ages are measured back from ``now`` (the present unless a caller passes
another), and every kind keeps what is still needed whatever its age (see each module).
Two collectors never run at once: the pass holds a named lock, so a scheduled gc and one
typed at a terminal take turns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput
from slipway.core.locks import named_lock
from slipway.core.settings import RetentionSettings
from slipway.features.offline.delta import DeltaOfflineStore
from slipway.registry.mlflow_store import MlflowStore
from slipway.retention.audit import AuditArchiver
from slipway.retention.capture import purge_capture
from slipway.retention.delta import vacuum_offline
from slipway.retention.events import platform_subscribers, purge_events
from slipway.retention.queue import purge_work_items
from slipway.retention.report import KINDS, GcReport, KindReport
from slipway.retention.runs import purge_deleted_runs
from slipway.retention.sizes import RootSizes

LOCK = "retention/gc"
_SETTING = {
    "capture": "capture_days",
    "delta": "delta_versions_hours",
    "work_items": "work_items_days",
    "events": "events_days",
    "audit": "audit_days",
    "runs": "deleted_runs_days",
}


def check_kinds(only: Sequence[str] | None) -> list[str]:
    """The kinds to collect, in :data:`KINDS` order; an unknown one is InvalidInput."""
    if not only:
        return list(KINDS)
    unknown = sorted(set(only) - set(KINDS))
    if unknown:
        raise InvalidInput(
            f"unknown retention kind {unknown[0]!r}: choose from {', '.join(KINDS)}",
            field="only",
        )
    return [kind for kind in KINDS if kind in only]


@dataclass
class GarbageCollector:
    """What a gc needs of the platform, passed in explicitly."""

    retention: RetentionSettings
    db: Database
    artifacts: ArtifactStore
    artifact_root: str
    offline: DeltaOfflineStore
    mlflow: MlflowStore
    kafka: bool = False

    def run(
        self,
        *,
        dry_run: bool = False,
        only: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> GcReport:
        kinds = check_kinds(only)
        now = now or utcnow()
        reports: list[KindReport] = []
        with named_lock(self.db, LOCK):
            for kind in kinds:
                age = getattr(self.retention, _SETTING[kind])
                if age is None:
                    reports.append(
                        KindReport(
                            kind,
                            enabled=False,
                            notes=[f"retention.{_SETTING[kind]} is not set: kept for ever"],
                        )
                    )
                    continue
                span = timedelta(hours=age) if kind == "delta" else timedelta(days=age)
                reports.append(self._collect(kind, now - span, now, dry_run))
        return GcReport(dry_run=dry_run, kinds=reports)

    def _collect(self, kind: str, cutoff: datetime, now: datetime, dry_run: bool) -> KindReport:
        batch = self.retention.batch_size
        if kind == "capture":
            sizes = RootSizes(self.artifact_root)
            return purge_capture(self.db, self.artifacts, sizes, cutoff, now=now, dry_run=dry_run)
        if kind == "delta":
            return vacuum_offline(self.db, self.offline, cutoff, dry_run=dry_run)
        if kind == "work_items":
            return purge_work_items(self.db, cutoff, dry_run=dry_run, batch_size=batch)
        if kind == "events":
            subscribers = platform_subscribers(kafka=self.kafka)
            return purge_events(
                self.db, cutoff, subscribers=subscribers, dry_run=dry_run, batch_size=batch
            )
        if kind == "audit":
            return AuditArchiver(self.db, self.artifacts, batch_size=batch).run(
                cutoff, dry_run=dry_run
            )
        return purge_deleted_runs(
            self.db, self.mlflow, self.artifacts, self.artifact_root, cutoff, dry_run=dry_run
        )
