"""Submitting, inspecting and stopping training jobs; every method returns resources
(:class:`~slipway.training.resources.TrainingJob`, :class:`~slipway.core.logsink.LogLine`).
A submission and a stop are audited (``training_job.*``) in their own transaction. A
service is one workspace's (:meth:`TrainingService.in_workspace`): its jobs' names, MLflow
runs, files and logs are that workspace's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, NotFound
from slipway.core.events import EventLog
from slipway.core.logsink import LogLine, read_logs
from slipway.core.queue import WorkItem, WorkQueue
from slipway.core.resource import Listing
from slipway.core.waiting import wait_until_final
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_resource
from slipway.security.audit import AuditLog
from slipway.training.resources import TrainingJob
from slipway.training.spec import (
    CRASH_RETRIES,
    JOB_KIND,
    QUEUE,
    TERMINAL,
    TrainingJobSpec,
    job_log_id,
)
from slipway.training.tables import TrainingJobRow


class TrainingService:
    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        events: EventLog,
        audit: AuditLog | None = None,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        self.db = db
        self.queue = queue
        self.events = events
        self.audit = audit or AuditLog(db)
        self.workspace = workspace

    def in_workspace(self, workspace: str) -> TrainingService:
        """The training jobs of ``workspace`` (a validated name)."""
        if workspace == self.workspace:
            return self
        return TrainingService(self.db, self.queue, self.events, self.audit, workspace=workspace)

    def _resource(self, resource: str) -> str:
        return scoped_resource(self.workspace, resource)

    def submit(
        self, spec: TrainingJobSpec | dict[str, Any], *, actor: str | None = None
    ) -> TrainingJob:
        """Queue a job; a worker runs it. Names are unique, like SageMaker's."""
        job = TrainingJobSpec.parse(spec)
        with self.db.write() as session:
            if session.get(TrainingJobRow, (self.workspace, job.name)) is not None:
                raise Conflict(f"a training job named {job.name!r} exists already")
            item = self.queue.enqueue(
                QUEUE,
                JOB_KIND,
                {"name": job.name, "workspace": self.workspace},
                max_attempts=job.retries + 1 + CRASH_RETRIES,
                backoff_seconds=1.0,
                session=session,
            )
            row = TrainingJobRow(
                workspace=self.workspace,
                name=job.name,
                spec=job.model_dump(mode="json"),
                state="Pending",
                attempts=0,
                failures=0,
                work_item_id=item.id,
                created_at=utcnow(),
            )
            session.add(row)
            self.events.append(
                "training.job_submitted", self._resource(f"job/{job.name}"), {}, session=session
            )
            self.audit.changed(
                actor,
                "training_job.submit",
                self._resource(f"training-job/{job.name}"),
                {
                    "entry_point": job.script or job.module or job.function,
                    "experiment": job.experiment,
                },
                session=session,
            )
            session.flush()
            return TrainingJob.model_validate(row)

    def get(self, name: str) -> TrainingJob:
        with self.db.session() as session:
            row = self._row(session, name)
        if self._given_up(row) is None:
            return TrainingJob.model_validate(row)
        # Failing the job reads, then writes: that takes a write transaction from the
        # start. A read transaction upgraded to a write after another connection committed
        # fails on SQLite at once ("database is locked"). Polls of a running job (wait())
        # stay reads; only a job to fail takes the write lock, and checks again under it.
        with self.db.write() as session:
            row = self._row(session, name)
            self._reconcile(row)
            session.flush()
            return TrainingJob.model_validate(row)

    def _row(self, session: Session, name: str) -> TrainingJobRow:
        row = session.get(TrainingJobRow, (self.workspace, name))
        if row is None:
            raise NotFound(f"training job {name!r} does not exist")
        return row

    def _given_up(self, row: TrainingJobRow) -> WorkItem | None:
        """The work item of an unfinished job that ran out of attempts (workers kept
        dying) or was cancelled, else ``None``."""
        if row.state in TERMINAL or row.work_item_id is None:
            return None
        item = self.queue.get(row.work_item_id)
        return item if item.state in ("failed", "cancelled") else None

    def _reconcile(self, row: TrainingJobRow) -> None:
        """A job whose work item gave up has failed (``row`` is in a write transaction)."""
        item = self._given_up(row)
        if item is not None:
            row.state = "Failed"
            row.error = row.error or item.last_error
            row.finished_at = utcnow()

    def jobs(self, limit: int = 50, *, offset: int = 0) -> Listing[TrainingJob]:
        """The latest ``limit`` jobs, newest first, skipping the ``offset`` newest (a
        page of a long list: the console's, with :meth:`count`)."""
        with self.db.session() as session:
            rows = session.scalars(
                select(TrainingJobRow)
                .where(TrainingJobRow.workspace == self.workspace)
                .order_by(TrainingJobRow.created_at.desc(), TrainingJobRow.name)
                .limit(limit)
                .offset(offset)
            )
            return Listing(TrainingJob.model_validate(row) for row in rows)

    def count(self) -> int:
        """How many training jobs the workspace has (to page :meth:`jobs`)."""
        with self.db.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(TrainingJobRow)
                    .where(TrainingJobRow.workspace == self.workspace)
                )
                or 0
            )

    def wait(self, name: str, timeout: float = 600.0) -> TrainingJob:
        """The job once it has finished (Succeeded, Failed or Stopped); ``TimeoutError``
        after ``timeout`` seconds."""
        return wait_until_final(
            lambda: self.get(name),
            lambda r: r.state,
            TERMINAL,
            what=f"training job {name}",
            timeout=timeout,
        )

    def stop(self, name: str, *, actor: str | None = None) -> None:
        with self.db.write() as session:
            row = self._row(session, name)
            if row.state in TERMINAL:
                raise Conflict(f"training job {name} is already {row.state}")
            was_pending = row.state == "Pending"
            self.audit.changed(
                actor,
                "training_job.stop",
                self._resource(f"training-job/{name}"),
                {"state": row.state},
                session=session,
            )
            row.state, row.finished_at = "Stopped", utcnow()
            item = row.work_item_id
        if was_pending and item is not None:
            self.queue.cancel(item)

    def logs(self, name: str, after: int = 0) -> Listing[LogLine]:
        """The job's captured output after position ``after`` (a line's ``id``);
        ``NotFound`` for an unknown job."""
        with self.db.session() as session:
            self._row(session, name)
        return read_logs(self.db, job_log_id(name, self.workspace), after=after)
