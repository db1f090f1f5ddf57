"""Event triggers: start a pipeline when a matching event is appended to the outbox.

A trigger names an event type, optional filters on the event's payload and resource,
how to map event fields to pipeline parameters, and a debounce window: events arriving
within the window after a firing are absorbed, so a burst (an ingestion in many batches,
drift reported by several monitors) starts one execution. Events are read through a
durable subscription cursor by one processor at a time (a named lock), so every event is
considered exactly once even with several schedulers running.

A trigger's definition can be replaced in place (:meth:`Triggers.update`, what a
declarative apply does when a spec changed): its enabled state, how often it fired and
when it last did stay, so its debounce window holds across the change.

Creating, updating, pausing, resuming and deleting a trigger are audited (``trigger.*``)
with the caller's actor; each firing is audited as a ``pipeline.start`` by ``scheduler``.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.locks import named_lock
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.core.workspace import scoped_resource, unscoped_resource
from slipway.events.paths import lookup, matches
from slipway.events.resources import Trigger, TriggerSpec
from slipway.events.tables import TriggerRow
from slipway.pipelines.schedules import SCHEDULER
from slipway.pipelines.service import PipelineService
from slipway.security.audit import AuditLog

SUBSCRIBER = "pipeline-triggers"


class Triggers:
    """The triggers of one workspace (:meth:`in_workspace` gives another's): each starts
    a pipeline of its workspace on the events of its workspace only, its filters naming
    resources as its workspace does. :meth:`process` serves every workspace's."""

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

    def in_workspace(self, workspace: str) -> Triggers:
        """The triggers of ``workspace`` (a validated name)."""
        if workspace == self.workspace:
            return self
        return Triggers(self.db, self.events, self.pipelines.in_workspace(workspace), self.audit)

    def _resource(self, name: str) -> str:
        return scoped_resource(self.workspace, f"trigger/{name}")

    def create(
        self,
        name: str,
        pipeline: str,
        event_type: str,
        *,
        filters: dict[str, Any] | None = None,
        parameter_mapping: dict[str, str] | None = None,
        debounce_seconds: float = 0.0,
        actor: str | None = None,
        confined: bool = False,
    ) -> Trigger:
        self._check(name, pipeline, event_type, debounce_seconds)
        with self.db.write() as session:
            if session.get(TriggerRow, (self.workspace, name)) is not None:
                raise Conflict(f"trigger {name!r} exists already")
            row = TriggerRow(
                workspace=self.workspace,
                name=name,
                pipeline=pipeline,
                event_type=event_type,
                filters=filters or {},
                parameter_mapping=parameter_mapping or {},
                debounce_seconds=debounce_seconds,
                enabled=True,
                fired=0,
                created_at=utcnow(),
                confined=confined,
            )
            session.add(row)
            self.audit.changed(
                actor,
                "trigger.create",
                self._resource(name),
                {"pipeline": pipeline, "event_type": event_type},
                session=session,
            )
            session.flush()
            return Trigger.model_validate(row)

    def update(
        self,
        spec: TriggerSpec | dict[str, Any],
        *,
        actor: str | None = None,
        confined: bool = False,
    ) -> Trigger:
        """Replace the definition of the trigger ``spec.name`` (NotFound when there is
        none), checked as :meth:`create` checks it; nothing changes when it is refused.
        Its enabled state, ``fired`` and ``last_fired_at`` stay (a debounce window running
        goes on running). ``confined`` says where the new definition came from, as at
        :meth:`create`: it replaces the old one whole, so the flag is the new one's."""
        trigger = parse_spec(TriggerSpec, spec)
        self._check(trigger.name, trigger.pipeline, trigger.event_type, trigger.debounce_seconds)
        with self.db.write() as session:
            row = self._row(session, trigger.name)
            row.pipeline = trigger.pipeline
            row.event_type = trigger.event_type
            row.filters = dict(trigger.filters)
            row.parameter_mapping = dict(trigger.parameter_mapping)
            row.debounce_seconds = trigger.debounce_seconds
            row.confined = confined
            self.audit.changed(
                actor,
                "trigger.update",
                self._resource(trigger.name),
                {"pipeline": trigger.pipeline, "event_type": trigger.event_type},
                session=session,
            )
            session.flush()
            return Trigger.model_validate(row)

    def _check(self, name: str, pipeline: str, event_type: str, debounce_seconds: float) -> None:
        """What :meth:`create` and :meth:`update` refuse, before either writes: a bad name,
        event type or debounce, or a pipeline that does not exist (InvalidInput naming
        it)."""
        validate_name(name, field="name")
        if not event_type or len(event_type) > 127:
            raise InvalidInput("event_type must be 1 to 127 characters", field="event_type")
        if debounce_seconds < 0:
            raise InvalidInput("debounce_seconds must not be negative", field="debounce_seconds")
        try:
            self.pipelines.get(pipeline)
        except NotFound:
            # The body is wrong, not the path: a 400 naming the field, as a monitor's
            # missing baseline is.
            raise InvalidInput(f"pipeline {pipeline!r} does not exist", field="pipeline") from None

    def get(self, name: str) -> Trigger:
        with self.db.session() as session:
            return Trigger.model_validate(self._row(session, name))

    def all(self) -> Listing[Trigger]:
        with self.db.session() as session:
            rows = session.scalars(
                select(TriggerRow)
                .where(TriggerRow.workspace == self.workspace)
                .order_by(TriggerRow.name)
            )
            return Listing(Trigger.model_validate(row) for row in rows)

    def set_enabled(self, name: str, enabled: bool, *, actor: str | None = None) -> Trigger:
        """Pause or resume a trigger. Events appended while it is paused never fire it:
        the events are still read (other triggers may want them), and a resumed trigger
        starts from the events appended after it."""
        with self.db.write() as session:
            row = self._row(session, name)
            row.enabled = enabled
            self.audit.changed(
                actor,
                "trigger.enable" if enabled else "trigger.disable",
                self._resource(name),
                {"pipeline": row.pipeline},
                session=session,
            )
            session.flush()
            return Trigger.model_validate(row)

    def delete(self, name: str, *, actor: str | None = None) -> None:
        with self.db.write() as session:
            row = self._row(session, name)
            session.delete(row)
            self.audit.changed(
                actor,
                "trigger.delete",
                self._resource(name),
                {"pipeline": row.pipeline},
                session=session,
            )

    def _row(self, session: Session, name: str) -> TriggerRow:
        row = session.get(TriggerRow, (self.workspace, name))
        if row is None:
            raise NotFound(f"trigger {name!r} does not exist")
        return row

    def process(self, limit: int = 500) -> list[str]:
        """Consider new events; returns the executions started."""
        started: list[str] = []
        with named_lock(self.db, SUBSCRIBER):
            subscription = self.events.subscription(SUBSCRIBER)
            events = subscription.poll(limit=limit)
            if not events:
                return started
            with self.db.write() as session:
                triggers = list(
                    session.scalars(select(TriggerRow).where(TriggerRow.enabled.is_(True)))
                )
                for event in events:
                    # A trigger is its workspace's: another workspace's events are not its
                    # business, and its filters name resources as its workspace does.
                    workspace, resource = unscoped_resource(event.resource)
                    seen = dataclasses.replace(event, resource=resource)
                    for trigger in triggers:
                        if (
                            trigger.workspace != workspace
                            or trigger.event_type != event.type
                            or not matches(trigger.filters, seen)
                        ):
                            continue
                        window = timedelta(seconds=trigger.debounce_seconds)
                        if trigger.last_fired_at and event.time < trigger.last_fired_at + window:
                            continue
                        params = {
                            p: lookup(seen, path) for p, path in trigger.parameter_mapping.items()
                        }
                        started.append(
                            self.pipelines.in_workspace(workspace).start(
                                trigger.pipeline,
                                params,
                                session=session,
                                trigger={
                                    "type": "event",
                                    "trigger": trigger.name,
                                    "event_id": event.id,
                                    "event_type": event.type,
                                },
                                actor=SCHEDULER,
                                confined=trigger.confined,
                            )
                        )
                        trigger.last_fired_at = event.time
                        trigger.fired += 1
                subscription.ack(events[-1].id, session=session)
        return started
