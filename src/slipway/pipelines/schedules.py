"""Cron schedules that start pipelines, fired exactly once per tick.

Each schedule persists its ``next_fire_at``. A scheduler tick locks the due schedules
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite), records each firing
under a unique (schedule, fire time) key and starts the execution in the same transaction,
then moves ``next_fire_at`` on — so two schedulers running at once never fire a tick twice.

After downtime, the catch-up policy says what to do with the ticks that were missed:
``none`` skips them, ``latest`` fires once for the most recent, ``all`` fires each.

A schedule's definition can be replaced in place (:meth:`Schedules.update`, what a
declarative apply does when a spec changed): its firings, enabled state and last firing
stay, and its next fire time moves only when the new definition says it fires otherwise.

Creating, updating, pausing, resuming and deleting a schedule are audited
(``schedule.*``) with the caller's actor; each firing is audited as a ``pipeline.start``
by ``scheduler``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from croniter import croniter
from sqlalchemy import select

from slipway.core.clock import utcnow
from slipway.core.cron import next_after
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.core.workspace import scoped_resource
from slipway.pipelines.resources import Catchup, Schedule, ScheduleFire, ScheduleSpec
from slipway.pipelines.service import PipelineService
from slipway.pipelines.tables import ScheduleFireRow, ScheduleRow
from slipway.security.audit import AuditLog

MAX_CATCHUP_FIRES = 1000
# The actor of the changes the scheduler makes on its own (a firing starts an execution).
SCHEDULER = "scheduler"


@dataclass(frozen=True)
class Fired:
    """What a scheduler tick did (in process only: ``tick`` is not a remote method)."""

    schedule: str
    fire_time: datetime
    execution_id: str


class Schedules:
    """The schedules of one workspace (:meth:`in_workspace` gives another's), starting
    its pipelines; :meth:`tick` fires every workspace's."""

    def __init__(
        self,
        db: Database,
        events: EventLog,
        pipelines: PipelineService,
        audit: AuditLog | None = None,
    ) -> None:
        self.db = db
        self.events = events
        self.pipelines = pipelines
        self.audit = audit or AuditLog(db)
        self.workspace = pipelines.workspace

    def in_workspace(self, workspace: str) -> Schedules:
        """The schedules of ``workspace`` (a validated name)."""
        if workspace == self.workspace:
            return self
        return Schedules(self.db, self.events, self.pipelines.in_workspace(workspace), self.audit)

    def _resource(self, name: str) -> str:
        return scoped_resource(self.workspace, f"schedule/{name}")

    def create(
        self,
        name: str,
        pipeline: str,
        cron: str,
        *,
        timezone: str = "UTC",
        parameters: dict[str, Any] | None = None,
        catchup: Catchup = "latest",
        start_at: datetime | None = None,
        actor: str | None = None,
        confined: bool = False,
    ) -> Schedule:
        self._check(name, pipeline, cron, timezone, catchup)
        first = next_after(cron, timezone, start_at or utcnow())
        with self.db.write() as session:
            if session.get(ScheduleRow, (self.workspace, name)) is not None:
                raise Conflict(f"schedule {name!r} exists already")
            row = ScheduleRow(
                workspace=self.workspace,
                name=name,
                pipeline=pipeline,
                cron=cron,
                timezone=timezone,
                parameters=parameters or {},
                catchup=catchup,
                enabled=True,
                next_fire_at=first,
                created_at=utcnow(),
                confined=confined,
            )
            session.add(row)
            self.audit.changed(
                actor,
                "schedule.create",
                self._resource(name),
                {"pipeline": pipeline, "cron": cron, "timezone": timezone, "catchup": catchup},
                session=session,
            )
            session.flush()
            return Schedule.model_validate(row)

    def update(
        self,
        spec: ScheduleSpec | dict[str, Any],
        *,
        actor: str | None = None,
        confined: bool = False,
    ) -> Schedule:
        """Replace the definition of the schedule ``spec.name`` (NotFound when there is
        none), checked as :meth:`create` checks it; nothing changes when it is refused.

        Its enabled state, firings and last firing stay. Its next fire time is recomputed
        when the cron expression or time zone changed, or when the spec gives
        ``start_at`` (it is not stored, so it counts each time it is given): from
        ``start_at`` or now, whichever is later — an update never reaches back to fire
        ticks before now (a backfill is a new schedule's ``start_at``).

        ``confined`` says where the new parameters came from, as at :meth:`create`: they
        replace the old ones whole, so the flag is the new definition's."""
        schedule = parse_spec(ScheduleSpec, spec)
        self._check(
            schedule.name, schedule.pipeline, schedule.cron, schedule.timezone, schedule.catchup
        )
        now = utcnow()
        # A start without a time zone is the machine's local time, as at create.
        start = max(schedule.start_at.astimezone() if schedule.start_at else now, now)
        with self.db.write() as session:
            # Locked against a scheduler tick: one running skips it, one that locked it
            # first has committed its firing (and moved it on) before this reads it.
            row = session.get(ScheduleRow, (self.workspace, schedule.name), with_for_update=True)
            if row is None:
                raise NotFound(f"schedule {schedule.name!r} does not exist")
            changed = (schedule.cron, schedule.timezone) != (row.cron, row.timezone)
            if changed or schedule.start_at is not None:
                row.next_fire_at = next_after(schedule.cron, schedule.timezone, start)
            row.pipeline = schedule.pipeline
            row.cron = schedule.cron
            row.timezone = schedule.timezone
            row.parameters = dict(schedule.parameters)
            row.catchup = schedule.catchup
            row.confined = confined
            self.audit.changed(
                actor,
                "schedule.update",
                self._resource(schedule.name),
                {
                    "pipeline": schedule.pipeline,
                    "cron": schedule.cron,
                    "timezone": schedule.timezone,
                    "catchup": schedule.catchup,
                },
                session=session,
            )
            session.flush()
            return Schedule.model_validate(row)

    def _check(self, name: str, pipeline: str, cron: str, timezone: str, catchup: str) -> None:
        """What :meth:`create` and :meth:`update` refuse, before either writes: a bad name,
        cron expression, time zone or catch-up policy, or a pipeline that does not
        exist (InvalidInput naming it)."""
        validate_name(name, field="name")
        if not croniter.is_valid(cron):
            raise InvalidInput(f"{cron!r} is not a valid cron expression", field="cron")
        if catchup not in ("none", "latest", "all"):
            raise InvalidInput("catchup must be none, latest or all", field="catchup")
        next_after(cron, timezone, utcnow())  # an unknown time zone names "timezone"
        try:
            self.pipelines.get(pipeline)
        except NotFound:
            # The body is wrong, not the path: a 400 naming the field, as a monitor's
            # missing baseline is.
            raise InvalidInput(f"pipeline {pipeline!r} does not exist", field="pipeline") from None

    def get(self, name: str) -> Schedule:
        with self.db.session() as session:
            row = session.get(ScheduleRow, (self.workspace, name))
            if row is None:
                raise NotFound(f"schedule {name!r} does not exist")
            return Schedule.model_validate(row)

    def all(self) -> Listing[Schedule]:
        with self.db.session() as session:
            rows = session.scalars(
                select(ScheduleRow)
                .where(ScheduleRow.workspace == self.workspace)
                .order_by(ScheduleRow.name)
            )
            return Listing(Schedule.model_validate(row) for row in rows)

    def set_enabled(self, name: str, enabled: bool, *, actor: str | None = None) -> Schedule:
        """Pause or resume a schedule; resumed, it fires next at its next tick from now
        (the ticks missed while paused are not caught up)."""
        with self.db.write() as session:
            row = session.get(ScheduleRow, (self.workspace, name))
            if row is None:
                raise NotFound(f"schedule {name!r} does not exist")
            row.enabled = enabled
            if enabled:
                row.next_fire_at = next_after(row.cron, row.timezone, utcnow())
            self.audit.changed(
                actor,
                "schedule.enable" if enabled else "schedule.disable",
                self._resource(name),
                {"pipeline": row.pipeline},
                session=session,
            )
            session.flush()
            return Schedule.model_validate(row)

    def delete(self, name: str, *, actor: str | None = None) -> None:
        with self.db.write() as session:
            row = session.get(ScheduleRow, (self.workspace, name))
            if row is None:
                raise NotFound(f"schedule {name!r} does not exist")
            session.delete(row)
            self.audit.changed(
                actor,
                "schedule.delete",
                self._resource(name),
                {"pipeline": row.pipeline},
                session=session,
            )

    def fires(self, name: str) -> Listing[ScheduleFire]:
        """The schedule's firings, oldest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(ScheduleFireRow)
                .where(
                    ScheduleFireRow.workspace == self.workspace, ScheduleFireRow.schedule == name
                )
                .order_by(ScheduleFireRow.fire_time)
            )
            return Listing(ScheduleFire.model_validate(row) for row in rows)

    def tick(self, now: datetime | None = None) -> list[Fired]:
        """Fire every due schedule once (per its catch-up policy); safe to run anywhere."""
        now = now or utcnow()
        fired: list[Fired] = []
        with self.db.write() as session:
            due = session.scalars(
                select(ScheduleRow)
                .where(ScheduleRow.enabled.is_(True), ScheduleRow.next_fire_at <= now)
                .with_for_update(skip_locked=True)
            ).all()
            for row in due:
                times = self._due_times(row, now)
                for fire_time in times:
                    key = (row.workspace, row.name, fire_time)
                    if session.get(ScheduleFireRow, key) is not None:
                        continue  # fired already (a second guard behind the row lock)
                    execution = self.pipelines.in_workspace(row.workspace).start(
                        row.pipeline,
                        row.parameters,
                        session=session,
                        trigger={
                            "type": "schedule",
                            "schedule": row.name,
                            "fire_time": fire_time.isoformat(),
                        },
                        actor=SCHEDULER,
                        confined=row.confined,
                    )
                    session.add(
                        ScheduleFireRow(
                            workspace=row.workspace,
                            schedule=row.name,
                            fire_time=fire_time,
                            execution_id=execution,
                            fired_at=now,
                        )
                    )
                    fired.append(Fired(row.name, fire_time, execution))
                    row.last_fired_at = now
                row.next_fire_at = next_after(row.cron, row.timezone, now)
            session.flush()
        return fired

    @staticmethod
    def _due_times(row: ScheduleRow, now: datetime) -> list[datetime]:
        times = [row.next_fire_at]
        while len(times) < MAX_CATCHUP_FIRES:
            following = next_after(row.cron, row.timezone, times[-1])
            if following > now:
                break
            times.append(following)
        if row.catchup == "all":
            return times
        if row.catchup == "latest":
            return times[-1:]
        # "none": only a tick that is due now (not one missed during downtime) fires.
        return [t for t in times[-1:] if (now - t).total_seconds() < 60]
