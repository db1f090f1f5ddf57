"""Retention of work items: finished items are deleted once they are old, never one that
something unfinished still reads.

An item is a candidate when it is final (succeeded, failed or cancelled) and was last
changed before the cutoff. Queued and claimed items are never touched. A final item is
still kept when:

- an unfinished pipeline execution has a step pointing at it, or an unfinished step does
  (the orchestrator reads a step's item to learn how an attempt ended);
- an unfinished training job, an unfinished batch job's chunk, or an unfinished monitor
  run points at it (their reconcilers read the item's outcome the same way);
- it has a ``dedupe_key``: that row is what makes enqueueing the same key again return
  the existing item, so deleting it would let the same work be queued twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, CompoundSelect, and_, delete, func, or_, select, union

from slipway.batch.spec import TERMINAL as BATCH_TERMINAL
from slipway.batch.tables import BatchChunkRow, BatchJobRow
from slipway.core.db.engine import Database
from slipway.core.db.tables import WorkItemRow
from slipway.core.queue import FINAL_STATES
from slipway.monitoring.tables import MonitorRunRow
from slipway.pipelines.states import TERMINAL_EXECUTIONS, TERMINAL_STEPS
from slipway.pipelines.tables import ExecutionRow, StepRunRow
from slipway.retention.report import KindReport
from slipway.training.spec import TERMINAL as TRAINING_TERMINAL
from slipway.training.tables import TrainingJobRow

MONITOR_RUN_FINAL = ("completed", "failed")


def referenced_items() -> CompoundSelect[tuple[int | None]]:
    """Ids of work items that something unfinished still points at (no NULLs, which
    would make ``NOT IN`` match nothing)."""
    return union(
        select(StepRunRow.work_item_id)
        .join(ExecutionRow, ExecutionRow.id == StepRunRow.execution_id)
        .where(
            StepRunRow.work_item_id.is_not(None),
            or_(
                ExecutionRow.state.not_in(list(TERMINAL_EXECUTIONS)),
                StepRunRow.state.not_in(list(TERMINAL_STEPS)),
            ),
        ),
        select(TrainingJobRow.work_item_id).where(
            TrainingJobRow.work_item_id.is_not(None),
            TrainingJobRow.state.not_in(list(TRAINING_TERMINAL)),
        ),
        select(BatchChunkRow.work_item_id)
        .join(
            BatchJobRow,
            (BatchJobRow.workspace == BatchChunkRow.workspace)
            & (BatchJobRow.name == BatchChunkRow.job),
        )
        .where(
            BatchChunkRow.work_item_id.is_not(None),
            or_(BatchJobRow.state.not_in(list(BATCH_TERMINAL)), BatchChunkRow.state != "done"),
        ),
        select(MonitorRunRow.work_item_id).where(
            MonitorRunRow.work_item_id.is_not(None),
            MonitorRunRow.state.not_in(MONITOR_RUN_FINAL),
        ),
    )


def _old_finished(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        WorkItemRow.state.in_([str(s) for s in FINAL_STATES]),
        WorkItemRow.updated_at < cutoff,
    )


def purge_work_items(
    db: Database, cutoff: datetime, *, dry_run: bool, batch_size: int
) -> KindReport:
    """Delete final items last changed before ``cutoff`` that nothing needs, in batches
    of ``batch_size`` per transaction (the protected set is re-read in each)."""
    report = KindReport("work_items")
    deletable = and_(
        _old_finished(cutoff),
        WorkItemRow.dedupe_key.is_(None),
        WorkItemRow.id.not_in(referenced_items()),
    )
    with db.session() as session:
        old = session.scalar(select(func.count()).where(_old_finished(cutoff))) or 0
        if dry_run:
            report.deleted = session.scalar(select(func.count()).where(deletable)) or 0
    if not dry_run:
        while True:
            with db.write() as session:
                query = select(WorkItemRow.id).where(deletable).order_by(WorkItemRow.id)
                ids = list(session.scalars(query.limit(batch_size)))
                if ids:
                    session.execute(delete(WorkItemRow).where(WorkItemRow.id.in_(ids)))
            report.deleted += len(ids)
            if len(ids) < batch_size:
                break
    report.protected = max(0, old - report.deleted)
    if report.protected:
        report.notes.append(
            f"{report.protected} old finished items kept: an unfinished execution, job,"
            " batch or monitor run points at them, or they carry a dedupe key"
        )
    return report
