"""Retention of Delta versions: vacuum each feature group's table, keeping every version
a registered model's lineage read and every version an unfinished job may be reading.

Delta's ``vacuum(retention_hours=R)`` deletes data files that a commit removed more than
R hours ago (appends remove nothing; record deletions and rewrites do), which ends time
travel to the versions that still used them. Here:

- every version that a registered model version's lineage names for the group (the
  training set's ``group_versions``, kept in ``slipway_model_inputs``) is passed as
  ``keep_versions``, so its files stay and it still time-travels and rebuilds the same
  training set; a lineage entry naming the group without a version means "some
  version": the group is then not vacuumed at all;
- R is stretched back to the oldest unfinished execution, job or queued work item, so
  any version that was current while such work ran stays readable;
- vacuum runs in lite mode: only files the log removed are candidates, never files no
  commit mentions (an ingest still writing has such files until it commits);
- time travel to a version needs its log, so the vacuum's own commits skip expired-log
  cleanup, and a table with lineage references gets ``delta.enableExpiredLogCleanup =
  false`` (delta-rs otherwise drops logs older than 30 days at each checkpoint).

The vacuum is first listed (a dry run); files already gone are not counted, and a table
with nothing to delete gets no commit at all.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from deltalake import DeltaTable, PostCommitHookProperties
from deltalake.exceptions import TableNotFoundError
from sqlalchemy import func, select

from slipway.batch.spec import TERMINAL as BATCH_TERMINAL
from slipway.batch.tables import BatchJobRow
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.db.tables import WorkItemRow
from slipway.core.queue import WorkState
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_name
from slipway.features.offline.delta import DeltaOfflineStore
from slipway.features.tables import FeatureGroupRow
from slipway.pipelines.states import TERMINAL_EXECUTIONS
from slipway.pipelines.tables import ExecutionRow
from slipway.registry.tables import ModelInputRow
from slipway.retention.report import KindReport
from slipway.retention.sizes import RootSizes
from slipway.training.spec import TERMINAL as TRAINING_TERMINAL
from slipway.training.tables import TrainingJobRow
from slipway.tuning.spec import TERMINAL as TUNING_TERMINAL
from slipway.tuning.tables import TuningJobRow

LOG_CLEANUP = "delta.enableExpiredLogCleanup"
_NO_LOG_CLEANUP = PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=False)


def lineage_versions(db: Database, workspace: str) -> dict[str, set[int | None]]:
    """Feature group of ``workspace`` → the Delta versions that workspace's registered
    model versions were trained on (``None``: a lineage naming the group without a
    version)."""
    found: dict[str, set[int | None]] = {}
    with db.session() as session:
        for group, version in session.execute(
            select(ModelInputRow.feature_group, ModelInputRow.delta_version).where(
                ModelInputRow.workspace == workspace
            )
        ):
            found.setdefault(group, set()).add(version)
    return found


def oldest_unfinished(db: Database) -> datetime | None:
    """When the oldest unfinished execution, job or queued/claimed work item was made."""
    queries = [
        select(func.min(ExecutionRow.created_at)).where(
            ExecutionRow.state.not_in(list(TERMINAL_EXECUTIONS))
        ),
        select(func.min(TrainingJobRow.created_at)).where(
            TrainingJobRow.state.not_in(list(TRAINING_TERMINAL))
        ),
        select(func.min(TuningJobRow.created_at)).where(
            TuningJobRow.state.not_in(list(TUNING_TERMINAL))
        ),
        select(func.min(BatchJobRow.created_at)).where(
            BatchJobRow.state.not_in(list(BATCH_TERMINAL))
        ),
        select(func.min(WorkItemRow.created_at)).where(
            WorkItemRow.state.in_([WorkState.QUEUED.value, WorkState.CLAIMED.value])
        ),
    ]
    with db.session() as session:
        times = [t for q in queries if (t := session.scalar(q)) is not None]
    return min(times) if times else None


def _workspaces(db: Database) -> list[str]:
    """The default workspace and every workspace with feature groups, model lineage or
    offline tables."""
    with db.session() as session:
        found = set(session.scalars(select(FeatureGroupRow.workspace).distinct()))
        found |= set(session.scalars(select(ModelInputRow.workspace).distinct()))
    return [DEFAULT_WORKSPACE, *sorted(found - {DEFAULT_WORKSPACE})]


def _groups(
    db: Database, sizes: RootSizes, referenced: dict[str, set[int | None]], workspace: str
) -> set[str]:
    """The workspace's defined groups, groups in lineage, and tables left behind by
    deleted groups."""
    with db.session() as session:
        names = set(
            session.scalars(
                select(FeatureGroupRow.name).where(FeatureGroupRow.workspace == workspace)
            )
        )
    names |= set(referenced)
    names |= set(sizes.folders())
    return names


def _vacuum(table: DeltaTable, hours: int, keep: list[int], *, dry_run: bool) -> list[str]:
    return table.vacuum(
        retention_hours=hours,
        dry_run=dry_run,
        enforce_retention_duration=False,  # the retention setting is the authority
        keep_versions=keep or None,
        post_commithook_properties=_NO_LOG_CLEANUP,
    )


def vacuum_offline(
    db: Database,
    offline: DeltaOfflineStore,
    cutoff: datetime,
    *,
    dry_run: bool,
) -> KindReport:
    """Vacuum every group's table, in every workspace, so that files removed before
    ``cutoff`` go, except those of protected versions (see the module)."""
    report = KindReport("delta", bytes_freed=0)
    # Vacuum measures from the real clock, in whole hours: the age rounds to the hour
    # (a cutoff in the future keeps nothing extra), unfinished work rounds up.
    elapsed = (utcnow() - cutoff).total_seconds() / 3600
    hours = max(0, math.ceil(elapsed - 0.01))
    oldest = oldest_unfinished(db)
    if oldest is not None and oldest < utcnow() - timedelta(hours=hours):
        hours = max(hours, math.ceil((utcnow() - oldest).total_seconds() / 3600))
        report.notes.append(f"versions current since {oldest.isoformat()} kept for unfinished work")
    for workspace in _workspaces(db):
        store = offline if workspace == DEFAULT_WORKSPACE else offline.in_workspace(workspace)
        # A workspace's models are trained on its own groups.
        referenced = lineage_versions(db, workspace)
        _vacuum_workspace(report, db, store, workspace, referenced, hours, dry_run=dry_run)
    return report


def _vacuum_workspace(
    report: KindReport,
    db: Database,
    offline: DeltaOfflineStore,
    workspace: str,
    referenced: dict[str, set[int | None]],
    hours: int,
    *,
    dry_run: bool,
) -> None:
    sizes = RootSizes(offline.root)
    for group in sorted(_groups(db, sizes, referenced, workspace)):
        label = scoped_name(workspace, group)
        pins = referenced.get(group, set())
        if None in pins:
            report.notes.append(f"{label}: a lineage names it without a version: not vacuumed")
            continue
        try:
            table = DeltaTable(offline.uri(group), storage_options=offline.storage_options)
        except TableNotFoundError:
            continue
        current = table.version()
        keep = sorted(v for v in pins if v is not None and 0 <= v <= current)
        present = dict(sizes.files(group))
        listed = [f"{group}/{path}" for path in _vacuum(table, hours, keep, dry_run=True)]
        doomed = [key for key in listed if key in present]
        if keep:
            report.protected += len(keep)
            report.notes.append(f"{label}: versions {keep} kept for model lineage")
        if not dry_run and keep and table.metadata().configuration.get(LOG_CLEANUP) != "false":
            table.alter.set_table_properties(
                {LOG_CLEANUP: "false"}, post_commithook_properties=_NO_LOG_CLEANUP
            )
        if not doomed:
            continue
        if not dry_run:
            _vacuum(table, hours, keep, dry_run=False)
            remaining = dict(sizes.files(group))
            doomed = [key for key in doomed if key not in remaining]
        report.deleted += len(doomed)
        report.add_bytes(sum(present[key] for key in doomed))
