"""Submitting, following, stopping and resuming batch transform jobs.

Submission does the checking a user wants before anything runs: the model reference
resolves and may be deployed in the job's environment, its files match their digest,
the input exists and has the model's columns, and the output is reachable. Then the job
is planned into chunks, one work item each, so every worker scores chunks in parallel.

It hands out :mod:`resources <slipway.batch.resources>` (:class:`BatchJob`,
:class:`BatchChunk`), built from the rows at this edge. Submitting, stopping and resuming
are audited (``batch_job.*``) in the transaction that makes the change. A service is one
workspace's (:meth:`BatchService.in_workspace`): its jobs' names, models (its registry's),
feature queries (its feature store's) and chunks are that workspace's.
"""

from __future__ import annotations

import builtins
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import fsspec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from slipway.batch import sources
from slipway.batch.resources import BatchChunk, BatchJob
from slipway.batch.spec import CHUNK_KIND, QUEUE, TERMINAL, BatchJobSpec
from slipway.batch.tables import BatchChunkRow, BatchJobRow
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.names import validate_name
from slipway.core.queue import WorkQueue
from slipway.core.resource import Listing
from slipway.core.settings import Settings
from slipway.core.specs import parse_spec
from slipway.core.waiting import wait_until_final
from slipway.core.workspace import scoped_resource
from slipway.features.store import FeatureStore
from slipway.registry.models import parse_model_ref
from slipway.registry.predict import schema_from_signature
from slipway.registry.service import Registry
from slipway.security.audit import AuditLog

# Attempts beyond the job's own retries, spent only when a worker dies under a chunk.
CRASH_RETRIES = 2
# The most jobs one listing returns.
MAX_LIST = 500


def check_limit(limit: int) -> int:
    """``limit`` if it is a listing's size this service gives, else InvalidInput."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST}", field="limit")
    return limit


class BatchService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        queue: WorkQueue,
        events: EventLog,
        registry: Registry,
        features: FeatureStore,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.queue = queue
        self.events = events
        self.registry = registry
        self.features = features
        self.audit = audit or AuditLog(db)
        self.workspace = registry.workspace

    def in_workspace(self, workspace: str) -> BatchService:
        """The batch jobs of ``workspace`` (a validated name), scoring its models."""
        if workspace == self.workspace:
            return self
        return BatchService(
            self.settings,
            self.db,
            self.queue,
            self.events,
            self.registry.in_workspace(workspace),
            self.features.in_workspace(workspace),
            self.audit,
        )

    def _resource(self, resource: str) -> str:
        return scoped_resource(self.workspace, resource)

    def _key(self, name: str) -> tuple[str, str]:
        return (self.workspace, name)

    # -- submission -----------------------------------------------------------------------

    def submit(self, spec: BatchJobSpec | dict[str, Any], *, actor: str) -> BatchJob:
        """Check ``spec`` (model, input columns, output), plan it into chunks and queue
        them; the job starts Pending. A bad spec stores nothing."""
        job = parse_spec(BatchJobSpec, spec)
        with self.db.session() as session:
            if session.get(BatchJobRow, self._key(job.name)) is not None:
                raise Conflict(f"a batch job named {job.name!r} exists already")
        name, ref = parse_model_ref(job.model)
        if ref is None:
            raise InvalidInput("name a version (name:3) or an alias (name@champion)", field="model")
        version = self.registry.check_deployable(name, ref, job.environment)
        self.registry.verify(name, version.version)
        if job.output.kafka is not None and not self.settings.kafka.bootstrap_servers:
            raise InvalidInput(
                "a Kafka output needs kafka.bootstrap_servers in the settings", field="output.kafka"
            )
        files = self._input_files(job)
        schema = schema_from_signature(version.signature)
        columns = set(sources.schema_of(*files[0]).names)
        needed = [c.name for c in schema or [] if c.required] + job.kept()
        missing = [c for c in dict.fromkeys(needed) if c not in columns]
        if missing:
            raise InvalidInput(
                f"the input lacks column(s) {', '.join(missing)} (model signature or kept columns)",
                field=missing[0],
            )
        chunks = sources.plan(files, job.chunk_rows)
        now = utcnow()
        with self.db.write() as session:
            if session.get(BatchJobRow, self._key(job.name)) is not None:
                raise Conflict(f"a batch job named {job.name!r} exists already")
            row = BatchJobRow(
                workspace=self.workspace,
                name=job.name,
                spec=job.model_dump(mode="json"),
                state="Pending",
                model_name=name,
                model_version=version.version,
                digest=version.digest,
                chunks_total=len(chunks),
                chunks_done=0,
                rows_done=0,
                delivered=0,
                failed=0,
                manifest=None,
                error=None,
                created_by=actor,
                created_at=now,
                started_at=None,
                finished_at=None,
            )
            session.add(row)
            for index, source in enumerate(chunks):
                item = self._enqueue(job, index, session)
                session.add(
                    BatchChunkRow(
                        workspace=self.workspace,
                        job=job.name,
                        index=index,
                        source=source,
                        state="pending",
                        work_item_id=item,
                    )
                )
            self.events.append(
                "batch.job_submitted",
                self._resource(f"batch/{job.name}"),
                {"model": f"{name}:{version.version}", "chunks": len(chunks)},
                session=session,
            )
            self.audit.changed(
                actor,
                "batch_job.submit",
                self._resource(f"batch-job/{job.name}"),
                {"model": f"{name}:{version.version}", "chunks": len(chunks)},
                session=session,
            )
            session.flush()
            return _jobs(session, [row])[0]

    def _enqueue(self, job: BatchJobSpec, index: int, session: Any) -> int:
        item = self.queue.enqueue(
            QUEUE,
            CHUNK_KIND,
            {"job": job.name, "chunk": index, "workspace": self.workspace},
            max_attempts=job.retries + 1 + CRASH_RETRIES,
            backoff_seconds=1.0,
            session=session,
        )
        return item.id

    def _input_files(self, job: BatchJobSpec) -> list[tuple[str, str]]:
        given = job.input
        if given.files is not None:
            return sources.expand(given.files.path, given.files.format)
        # A query or a training set is materialized once, then chunked like any file.
        folder = scoped_resource(self.workspace, "batch")  # workspaces/<ws>/batch elsewhere
        staging = (
            f"{self.settings.artifact_root.rstrip('/')}/{folder}/{job.name}-{uuid.uuid4().hex[:8]}"
        )
        if given.query is not None:
            table = self.features.query(given.query.sql)
        else:
            assert given.training_set is not None
            import pandas as pd

            with fsspec.open(given.training_set.entities, "rb") as handle:
                entities = pd.read_parquet(handle)
            table = self.features.training_set(
                entities,
                given.training_set.features,
                timestamp_column=given.training_set.timestamp_column,
            ).data
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table)
        fs, root = fsspec.core.url_to_fs(staging)
        fs.makedirs(root, exist_ok=True)
        with fs.open(f"{root}/input.parquet", "wb") as handle:
            pq.write_table(arrow, handle, row_group_size=min(job.chunk_rows, 1_000_000))
        return [(f"{staging}/input.parquet", "parquet")]

    # -- reads ------------------------------------------------------------------------------

    def get(self, name: str) -> BatchJob:
        """The job, its progress and how many of its chunks are in each state."""
        validate_name(name, field="name")
        with self.db.session() as session:
            row = session.get(BatchJobRow, self._key(name))
            if row is None:
                raise NotFound(f"batch job {name!r} does not exist")
            if row.state in TERMINAL or self._first_failed(session, row) is None:
                return _jobs(session, [row])[0]
        # A chunk gave up: failing the job reads, then writes, so it takes a write
        # transaction from the start and checks again under it. (A read transaction
        # upgraded to a write after a worker committed fails on SQLite at once.) Polls of
        # a healthy running job stay reads.
        with self.db.write() as session:
            row = session.get(BatchJobRow, self._key(name))
            if row is None:
                raise NotFound(f"batch job {name!r} does not exist")
            failed_now = self._reconcile(session, row)
            session.flush()
            job = _jobs(session, [row])[0]
        if failed_now:
            self._cancel_pending(name)
        return job

    def _first_failed(self, session: Any, row: BatchJobRow) -> tuple[BatchChunkRow, Any] | None:
        """The first unfinished chunk whose work item gave up, with that item."""
        for chunk in session.scalars(
            select(BatchChunkRow).where(
                BatchChunkRow.workspace == row.workspace,
                BatchChunkRow.job == row.name,
                BatchChunkRow.state != "done",
            )
        ):
            if chunk.work_item_id is None:
                continue
            item = self.queue.get(chunk.work_item_id)
            if item.state == "failed":
                return chunk, item
        return None

    def _reconcile(self, session: Any, row: BatchJobRow) -> bool:
        """A chunk that ran out of attempts (or failed for good) fails the job; True when
        it just did."""
        found = None if row.state in TERMINAL else self._first_failed(session, row)
        if found is None:
            return False
        chunk, item = found
        # Fail now and queue nothing more; chunks already running finish and add their
        # counts, so delivered/failed on the job stay exact.
        row.state, row.finished_at = "Failed", utcnow()
        error = item.last_error or chunk.error or "failed"
        row.error = error if error.startswith("chunk ") else f"chunk {chunk.index}: {error}"
        self.events.append(
            "batch.job_failed",
            self._resource(f"batch/{row.name}"),
            {"error": row.error, "delivered": row.delivered, "failed": row.failed},
            session=session,
        )
        return True

    @staticmethod
    def _is_kafka(row: BatchJobRow) -> bool:
        return bool((row.spec.get("output") or {}).get("kafka"))

    def chunks(self, name: str) -> Listing[BatchChunk]:
        """The job's chunks in order."""
        validate_name(name, field="name")
        with self.db.session() as session:
            if session.get(BatchJobRow, self._key(name)) is None:
                raise NotFound(f"batch job {name!r} does not exist")
            rows = session.scalars(
                select(BatchChunkRow)
                .where(BatchChunkRow.workspace == self.workspace, BatchChunkRow.job == name)
                .order_by(BatchChunkRow.index)
            ).all()
            return Listing(BatchChunk.model_validate(row) for row in rows)

    def list(self, limit: int = 50, *, offset: int = 0) -> Listing[BatchJob]:
        """Batch jobs, newest first, skipping the ``offset`` newest (a page of a long
        list: the console's, with :meth:`count`)."""
        check_limit(limit)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput("offset must be a whole number from 0", field="offset")
        with self.db.session() as session:
            rows = session.scalars(
                select(BatchJobRow)
                .where(BatchJobRow.workspace == self.workspace)
                .order_by(BatchJobRow.created_at.desc(), BatchJobRow.name)
                .limit(limit)
                .offset(offset)
            ).all()
            return Listing(_jobs(session, rows))

    def count(self) -> int:
        """How many batch jobs the workspace has (to page :meth:`list`)."""
        with self.db.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(BatchJobRow)
                    .where(BatchJobRow.workspace == self.workspace)
                )
                or 0
            )

    def wait(self, name: str, timeout: float = 3600.0) -> BatchJob:
        """Poll the job until it is Completed, Failed or Stopped; ``TimeoutError`` after
        ``timeout`` seconds."""
        return wait_until_final(
            lambda: self.get(name), lambda r: r.state, TERMINAL, what=f"batch job {name}",
            timeout=timeout,
        )  # fmt: skip

    # -- control ----------------------------------------------------------------------------

    def stop(self, name: str, *, actor: str | None = None) -> None:
        validate_name(name, field="name")
        with self.db.write() as session:
            row = session.get(BatchJobRow, self._key(name))
            if row is None:
                raise NotFound(f"batch job {name!r} does not exist")
            if row.state in TERMINAL:
                raise Conflict(f"batch job {name} is already {row.state}")
            self.audit.changed(
                actor,
                "batch_job.stop",
                self._resource(f"batch-job/{name}"),
                {"state": row.state},
                session=session,
            )
            row.state, row.finished_at = "Stopped", utcnow()
        self._cancel_pending(name)

    def _cancel_pending(self, name: str) -> None:
        with self.db.session() as session:
            items = [
                c.work_item_id
                for c in session.scalars(
                    select(BatchChunkRow).where(
                        BatchChunkRow.workspace == self.workspace,
                        BatchChunkRow.job == name,
                        BatchChunkRow.state == "pending",
                    )
                )
                if c.work_item_id is not None
            ]
        for item in items:
            # Already claimed: the chunk sees the finished job and skips.
            with contextlib.suppress(Conflict):
                self.queue.cancel(item)

    def resume(self, name: str, *, actor: str | None = None) -> BatchJob:
        """Run a Failed or Stopped job's unfinished chunks again; finished ones (written,
        or every message acknowledged) are not redone."""
        with self.db.write() as session:
            row = session.get(BatchJobRow, self._key(name))
            if row is None:
                raise NotFound(f"batch job {name!r} does not exist")
            if row.state not in ("Failed", "Stopped"):
                raise Conflict(f"batch job {name} is {row.state}; only Failed or Stopped resume")
            spec = BatchJobSpec.model_validate(row.spec)
            requeued = 0
            for chunk in session.scalars(
                select(BatchChunkRow).where(
                    BatchChunkRow.workspace == self.workspace,
                    BatchChunkRow.job == name,
                    BatchChunkRow.state != "done",
                )
            ):
                # A chunk cut short by the failure sends again whole; subtract what it
                # had delivered so the job's counts stay those of acknowledged messages.
                row.delivered -= chunk.delivered
                row.failed -= chunk.failed
                chunk.state, chunk.error, chunk.delivered, chunk.failed = "pending", None, 0, 0
                chunk.work_item_id = self._enqueue(spec, chunk.index, session)
                requeued += 1
            self.audit.changed(
                actor,
                "batch_job.resume",
                self._resource(f"batch-job/{name}"),
                {"from": row.state, "requeued_chunks": requeued},
                session=session,
            )
            if not requeued:  # stopped after its last chunk finished: nothing left to do
                row.state, row.error, row.finished_at = "Completed", None, utcnow()
                session.flush()
                return _jobs(session, [row])[0]
            row.state, row.error, row.finished_at = "Running", None, None
            # Stopped while Pending, no chunk ever started it: it starts now (the manifest
            # and the job's time need a start).
            row.started_at = row.started_at or utcnow()
            self.events.append(
                "batch.job_resumed", self._resource(f"batch/{name}"), {}, session=session
            )
            session.flush()
            return _jobs(session, [row])[0]


def _jobs(session: Session, rows: Sequence[BatchJobRow]) -> builtins.list[BatchJob]:
    """``rows`` as resources, each with its chunks counted by state (one query)."""
    names = [row.name for row in rows]
    states: dict[str, dict[str, int]] = {name: {} for name in names}
    if names:  # one listing is one workspace's
        counted = session.execute(
            select(BatchChunkRow.job, BatchChunkRow.state, func.count())
            .where(BatchChunkRow.workspace == rows[0].workspace, BatchChunkRow.job.in_(names))
            .group_by(BatchChunkRow.job, BatchChunkRow.state)
        ).all()
        for job, state, count in counted:
            states[job][state] = int(count)
    return [
        BatchJob.model_validate(row).model_copy(update={"chunk_states": states[row.name]})
        for row in rows
    ]
