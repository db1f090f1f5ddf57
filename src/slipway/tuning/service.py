"""Submitting and inspecting tuning jobs; every method returns resources
(:class:`~slipway.tuning.resources.TuningJob`, :class:`~slipway.tuning.resources.Trial`,
:class:`~slipway.core.logsink.LogLine`). A submission and a stop are audited
(``tuning_job.*``) in the transaction that stores them. A service is one workspace's
(:meth:`TuningService.in_workspace`): its jobs' names, studies, MLflow runs and logs are
that workspace's.

Optuna (and the trial runner, which uses it) is imported by the methods that open a
study: every process that assembles the platform imports this module, and only those
that submit a job or list its trials need Optuna.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, NotFound
from slipway.core.events import EventLog
from slipway.core.logsink import LogLine, read_logs
from slipway.core.queue import WorkQueue
from slipway.core.resource import Listing
from slipway.core.waiting import wait_until_final
from slipway.core.workspace import scoped_resource
from slipway.registry.mlflow_store import MlflowStore
from slipway.security.audit import AuditLog
from slipway.tuning.resources import Trial, TuningJob
from slipway.tuning.spec import QUEUE, RUNNER_KIND, TERMINAL, TuningJobSpec
from slipway.tuning.tables import TuningJobRow


class TuningService:
    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        events: EventLog,
        mlflow: MlflowStore,
        artifact_root: str,
        audit: AuditLog | None = None,
    ) -> None:
        self.db = db
        self.queue = queue
        self.events = events
        self.mlflow = mlflow  # bound to this service's workspace
        self.artifact_root = artifact_root
        self.audit = audit or AuditLog(db)
        self.workspace = mlflow.workspace

    def in_workspace(self, workspace: str) -> TuningService:
        """The tuning jobs of ``workspace`` (a validated name)."""
        if workspace == self.workspace:
            return self
        return TuningService(
            self.db,
            self.queue,
            self.events,
            self.mlflow.in_workspace(workspace),
            self.artifact_root,
            self.audit,
        )

    def _resource(self, resource: str) -> str:
        return scoped_resource(self.workspace, resource)

    def submit(
        self, spec: TuningJobSpec | dict[str, Any], *, actor: str | None = None
    ) -> TuningJob:
        # Lazy: module docstring.
        import optuna

        from slipway.tuning.runner import WARM
        from slipway.tuning.study import open_study, pruner, sampler, storage, study_name

        job = TuningJobSpec.parse(spec)
        with self.db.session() as session:
            if session.get(TuningJobRow, (self.workspace, job.name)) is not None:
                raise Conflict(f"a tuning job named {job.name!r} exists already")
        parents = [self.get(name) for name in job.warm_start_from]  # NotFound first
        study = optuna.create_study(
            study_name=study_name(job.name, self.workspace),
            storage=storage(self.db),
            sampler=sampler(job),
            pruner=pruner(job),
            direction=job.direction,
        )
        for parent in parents:
            parent_study = open_study(self.db, parent.spec, workspace=self.workspace)
            for trial in parent_study.get_trials(
                deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]
            ):
                study.add_trial(
                    optuna.trial.create_trial(
                        params=trial.params,
                        distributions=trial.distributions,
                        value=trial.value,
                        user_attrs={WARM: parent.name, "run_id": trial.user_attrs.get("run_id")},
                    )
                )
        run_id = self._parent_run(job)
        with self.db.write() as session:
            row = TuningJobRow(
                workspace=self.workspace,
                name=job.name,
                spec=job.model_dump(mode="json"),
                state="Running",
                mlflow_run_id=run_id,
                created_at=utcnow(),
            )
            session.add(row)
            for slot in range(job.max_parallel_jobs):
                self.queue.enqueue(
                    QUEUE,
                    RUNNER_KIND,
                    {"name": job.name, "slot": slot, "workspace": self.workspace},
                    max_attempts=3,
                    session=session,
                )
            self.events.append(
                "tuning.job_started",
                self._resource(f"tuning/{job.name}"),
                {"warm_start_trials": len(study.trials)},
                session=session,
            )
            self.audit.changed(
                actor,
                "tuning_job.submit",
                self._resource(f"tuning-job/{job.name}"),
                {"trial": job.trial, "strategy": job.strategy, "max_jobs": job.max_jobs},
                session=session,
            )
            session.flush()
            return TuningJob.model_validate(row)

    def _parent_run(self, job: TuningJobSpec) -> str:
        experiment_id = self.mlflow.experiment_id(job.experiment, self.artifact_root)
        with self.mlflow.scope():
            run = self.mlflow.client.create_run(
                experiment_id, run_name=job.name, tags={"slipway.tuning_job": job.name}
            )
        return str(run.info.run_id)

    def get(self, name: str) -> TuningJob:
        with self.db.session() as session:
            row = session.get(TuningJobRow, (self.workspace, name))
            if row is None:
                raise NotFound(f"tuning job {name!r} does not exist")
            return TuningJob.model_validate(row)

    def jobs(self, limit: int = 50, *, offset: int = 0) -> Listing[TuningJob]:
        """The latest ``limit`` jobs, newest first, skipping the ``offset`` newest (a
        page of a long list: the console's, with :meth:`count`)."""
        with self.db.session() as session:
            rows = session.scalars(
                select(TuningJobRow)
                .where(TuningJobRow.workspace == self.workspace)
                .order_by(TuningJobRow.created_at.desc(), TuningJobRow.name)
                .limit(limit)
                .offset(offset)
            )
            return Listing(TuningJob.model_validate(row) for row in rows)

    def count(self) -> int:
        """How many tuning jobs the workspace has (to page :meth:`jobs`)."""
        with self.db.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(TuningJobRow)
                    .where(TuningJobRow.workspace == self.workspace)
                )
                or 0
            )

    def trials(self, name: str) -> Listing[Trial]:
        """The job's trials (warm-start copies included), by number."""
        # Lazy: module docstring.
        from slipway.tuning.runner import INTERRUPTED, RETRY_OF, WARM
        from slipway.tuning.study import open_study

        spec = self.get(name).spec
        return Listing(
            Trial(
                number=t.number,
                state=t.state.name,
                value=t.value,
                params=t.params,
                run_id=t.user_attrs.get("run_id"),
                warm_start_from=t.user_attrs.get(WARM),
                intermediate=dict(t.intermediate_values),
                error=t.user_attrs.get("error"),
                interrupted=bool(t.user_attrs.get(INTERRUPTED)),
                retry_of=t.user_attrs.get(RETRY_OF),
            )
            for t in open_study(self.db, spec, workspace=self.workspace).get_trials(deepcopy=False)
        )

    def wait(self, name: str, timeout: float = 600.0) -> TuningJob:
        """The job once it has finished (Completed, Failed or Stopped); ``TimeoutError``
        after ``timeout`` seconds."""
        return wait_until_final(
            lambda: self.get(name),
            lambda r: r.state,
            TERMINAL,
            what=f"tuning job {name}",
            timeout=timeout,
        )

    def stop(self, name: str, *, actor: str | None = None) -> None:
        with self.db.write() as session:
            row = session.get(TuningJobRow, (self.workspace, name))
            if row is None:
                raise NotFound(f"tuning job {name!r} does not exist")
            if row.state in TERMINAL:
                raise Conflict(f"tuning job {name} is already {row.state}")
            self.audit.changed(
                actor,
                "tuning_job.stop",
                self._resource(f"tuning-job/{name}"),
                {"state": row.state},
                session=session,
            )
            row.state, row.finished_at = "Stopped", utcnow()

    def logs(self, name: str, after: int = 0) -> Listing[LogLine]:
        """The trials' captured output after position ``after`` (a line's ``id``); each
        line's ``step`` is ``trial-<number>``. ``NotFound`` for an unknown job."""
        from slipway.tuning.runner import tuning_log_id  # lazy: module docstring

        self.get(name)
        return read_logs(self.db, tuning_log_id(name, self.workspace), after=after)
