"""Alerts: rules on the events outbox that notify channels, with cool-down and retries.

Once per scheduler tick, :meth:`Alerts.process` reads new events through the durable
subscription ``alerts`` (one processor at a time, under a named lock). For each enabled
rule an event matches, it computes the rule's de-duplication key. Within the cool-down
after the last alert of that rule and key, the event is absorbed: the alert's
``suppressed`` count goes up and nothing is sent. Otherwise an alert is recorded with one
pending delivery per channel — in the same transaction that moves the cursor, so every
event is considered exactly once. Then due deliveries are attempted (see
:mod:`slipway.events.delivery`).

Cool-downs run on event time, so a backlog handled late (the scheduler was down) is
grouped as it would have been live.

Every change of a channel or a rule, and each test notification, is audited
(``alert_channel.*``, ``alert_rule.*``) with the caller's actor; channel configs never go
into the entry (a webhook URL's path is often its secret).

Channels, rules and fired alerts belong to a workspace (:meth:`Alerts.in_workspace`): a
rule sends to its workspace's channels and matches its workspace's events only, whose
resources its filters name as that workspace does (``model/churn/1``, not
``workspaces/<ws>/model/churn/1``). One processor handles every workspace's rules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import Event, EventLog
from slipway.core.locks import named_lock
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.settings import AlertSettings
from slipway.core.specs import parse_spec
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_resource, unscoped_resource
from slipway.events.channels import DeliveryError, Notification, check_config, redacted
from slipway.events.delivery import Attempt, Deliveries
from slipway.events.paths import matches
from slipway.events.resources import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertRule,
    ChannelTest,
    RuleUpdate,
)
from slipway.events.rules import RuleSpec, dedup_key, type_matches
from slipway.events.tables import AlertChannelRow, AlertDeliveryRow, AlertRow, AlertRuleRow
from slipway.security.audit import AuditLog, local_actor

SUBSCRIBER = "alerts"


def channel_of(row: AlertChannelRow) -> AlertChannel:
    """The channel as every face shows it: a webhook URL's path hidden."""
    return AlertChannel(
        name=row.name,
        kind=row.kind,
        config=redacted(row.kind, row.config),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def alert_of(row: AlertRow, deliveries: list[AlertDeliveryRow]) -> Alert:
    fields = {name: getattr(row, name) for name in Alert.model_fields if name != "deliveries"}
    return Alert(**fields, deliveries=[AlertDelivery.model_validate(d) for d in deliveries])


@dataclass
class Processed:
    """What one :meth:`Alerts.process` did: alerts fired, events absorbed, attempts."""

    fired: list[int] = field(default_factory=list)
    suppressed: int = 0
    attempts: list[Attempt] = field(default_factory=list)


class Alerts:
    def __init__(
        self,
        settings: AlertSettings,
        db: Database,
        events: EventLog,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.events = events
        self.audit = audit or AuditLog(db)
        self.deliveries = Deliveries(settings, db, events)
        self.workspace = DEFAULT_WORKSPACE

    def in_workspace(self, workspace: str) -> Alerts:
        """The channels, rules and alerts of ``workspace`` (a validated name)."""
        if workspace == self.workspace:
            return self
        view = Alerts(self.settings, self.db, self.events, self.audit)
        view.deliveries = self.deliveries
        view.workspace = workspace
        return view

    def _resource(self, resource: str) -> str:
        return scoped_resource(self.workspace, resource)

    # -- channels -------------------------------------------------------------------------

    def create_channel(
        self, name: str, kind: str, config: dict[str, Any] | None, *, actor: str
    ) -> AlertChannel:
        """Save a channel; its config is checked in full (webhook URLs against SSRF)."""
        validate_name(name, field="name")
        stored = check_config(kind, config, self.settings)
        now = utcnow()
        with self.db.write() as session:
            if session.get(AlertChannelRow, (self.workspace, name)) is not None:
                raise Conflict(f"alert channel {name!r} exists already")
            row = AlertChannelRow(
                workspace=self.workspace,
                name=name,
                kind=kind,
                config=stored,
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            self.audit.changed(
                actor,
                "alert_channel.create",
                self._resource(f"alert-channel/{name}"),
                {"kind": kind},
                session=session,
            )
            return channel_of(row)

    def update_channel(
        self, name: str, config: dict[str, Any] | None, *, actor: str | None = None
    ) -> AlertChannel:
        """Replace a channel's config (its kind stays); checked like a new one."""
        kind = self.channel(name).kind
        stored = check_config(kind, config, self.settings)
        with self.db.write() as session:
            row = self._channel(session, name)
            row.config = stored
            row.updated_at = utcnow()
            self.audit.changed(
                actor,
                "alert_channel.update",
                self._resource(f"alert-channel/{name}"),
                {"kind": kind},
                session=session,
            )
            return channel_of(row)

    def channel(self, name: str) -> AlertChannel:
        with self.db.session() as session:
            return channel_of(self._channel(session, name))

    def channels(self) -> Listing[AlertChannel]:
        query = (
            select(AlertChannelRow)
            .where(AlertChannelRow.workspace == self.workspace)
            .order_by(AlertChannelRow.name)
        )
        with self.db.session() as session:
            return Listing(channel_of(row) for row in session.scalars(query))

    def delete_channel(self, name: str, *, actor: str | None = None) -> None:
        """Delete a channel no rule sends to (pending deliveries to it will fail)."""
        with self.db.write() as session:
            row = self._channel(session, name)
            rules = session.scalars(
                select(AlertRuleRow).where(AlertRuleRow.workspace == self.workspace)
            )
            users = [r.name for r in rules if name in r.channels]
            if users:
                raise Conflict(
                    f"alert channel {name!r} is used by rule(s) {', '.join(sorted(users))}",
                    details={"rules": sorted(users)},
                )
            session.delete(row)
            self.audit.changed(
                actor,
                "alert_channel.delete",
                self._resource(f"alert-channel/{name}"),
                {"kind": row.kind},
                session=session,
            )

    def test(self, name: str, *, actor: str | None = None) -> ChannelTest:
        """Send a test notification to a channel now, once; nothing is stored but the
        audit entry (``alert_channel.test``, saying whether it was delivered)."""
        actor = actor or local_actor()
        with self.db.session() as session:
            row = self._channel(session, name)
        notification = Notification(
            rule="test",
            severity="info",
            event_type="alert.test",
            resource=self._resource(f"alert_channel/{name}"),
            payload={"message": "a test notification from Slipway", "requested_by": actor},
            time=utcnow(),
            dedup_key="test",
            test=True,
        )
        try:
            sent = self.deliveries.send(row.kind, row.config, notification)
        except DeliveryError as exc:
            result = ChannelTest(
                channel=name, delivered=False, status_code=exc.status_code, error=exc.message
            )
        else:
            result = ChannelTest(channel=name, delivered=True, status_code=sent.status_code)
        self.audit.changed(
            actor,
            "alert_channel.test",
            self._resource(f"alert-channel/{name}"),
            {"delivered": result.delivered, "status_code": result.status_code},
        )
        return result

    def _channel(self, session: Session, name: str) -> AlertChannelRow:
        row = session.get(AlertChannelRow, (self.workspace, name))
        if row is None:
            raise NotFound(f"alert channel {name!r} does not exist")
        return row

    # -- rules ----------------------------------------------------------------------------

    def create_rule(self, spec: RuleSpec | dict[str, Any], *, actor: str) -> AlertRule:
        """Save a rule. It applies to events appended from now on, not to older ones."""
        rule = parse_spec(RuleSpec, spec)
        now = utcnow()
        after = self.events.last_id()
        with self.db.write() as session:
            if session.get(AlertRuleRow, (self.workspace, rule.name)) is not None:
                raise Conflict(f"alert rule {rule.name!r} exists already")
            self._check_channels(session, rule.channels)
            row = AlertRuleRow(
                workspace=self.workspace,
                **self._fields(rule),
                after_event=after,
                fired=0,
                suppressed=0,
                last_fired_at=None,
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            self.audit.changed(
                actor,
                "alert_rule.create",
                self._resource(f"alert-rule/{rule.name}"),
                {"channels": rule.channels},
                session=session,
            )
            session.flush()
            return AlertRule.model_validate(row)

    def update_rule(
        self,
        name: str,
        spec: RuleSpec | RuleUpdate | dict[str, Any],
        *,
        actor: str | None = None,
    ) -> AlertRule:
        """Replace a rule's definition (a rule whose ``name`` may be left out); its
        counters and alert history stay."""
        if isinstance(spec, RuleUpdate):
            spec = spec.model_dump(exclude_unset=True)
        if isinstance(spec, dict):
            spec = {**spec, "name": spec.get("name") or name}
        rule = parse_spec(RuleSpec, spec)
        if rule.name != name:
            raise InvalidInput("a rule cannot be renamed", field="name")
        with self.db.write() as session:
            row = self._rule(session, name)
            self._check_channels(session, rule.channels)
            for key, value in self._fields(rule).items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            self.audit.changed(
                actor,
                "alert_rule.update",
                self._resource(f"alert-rule/{name}"),
                {"channels": rule.channels},
                session=session,
            )
            return AlertRule.model_validate(row)

    def set_rule_enabled(self, name: str, enabled: bool, *, actor: str | None = None) -> AlertRule:
        with self.db.write() as session:
            row = self._rule(session, name)
            row.enabled = enabled
            row.updated_at = utcnow()
            self.audit.changed(
                actor,
                "alert_rule.enable" if enabled else "alert_rule.disable",
                self._resource(f"alert-rule/{name}"),
                session=session,
            )
            return AlertRule.model_validate(row)

    def rule(self, name: str) -> AlertRule:
        with self.db.session() as session:
            return AlertRule.model_validate(self._rule(session, name))

    def rules(self) -> Listing[AlertRule]:
        query = (
            select(AlertRuleRow)
            .where(AlertRuleRow.workspace == self.workspace)
            .order_by(AlertRuleRow.name)
        )
        with self.db.session() as session:
            return Listing(AlertRule.model_validate(row) for row in session.scalars(query))

    def delete_rule(self, name: str, *, actor: str | None = None) -> None:
        """Delete a rule; alerts it fired stay in the history."""
        with self.db.write() as session:
            session.delete(self._rule(session, name))
            self.audit.changed(
                actor, "alert_rule.delete", self._resource(f"alert-rule/{name}"), session=session
            )

    @staticmethod
    def _fields(rule: RuleSpec) -> dict[str, Any]:
        return rule.model_dump(mode="json")

    def _check_channels(self, session: Session, names: list[str]) -> None:
        for index, name in enumerate(names):
            if session.get(AlertChannelRow, (self.workspace, name)) is None:
                raise InvalidInput(
                    f"alert channel {name!r} does not exist", field=f"channels.{index}"
                )

    def _rule(self, session: Session, name: str) -> AlertRuleRow:
        row = session.get(AlertRuleRow, (self.workspace, name))
        if row is None:
            raise NotFound(f"alert rule {name!r} does not exist")
        return row

    # -- fired alerts ---------------------------------------------------------------------

    def fired(
        self, *, rule: str | None = None, event_prefix: str | None = None, limit: int = 50
    ) -> Listing[Alert]:
        """Fired alerts, newest first, each with its deliveries; ``event_prefix`` keeps
        those raised by events whose type starts with it (``monitor.``: the monitors')."""
        query = (
            select(AlertRow)
            .where(AlertRow.workspace == self.workspace)
            .order_by(AlertRow.id.desc())
            .limit(limit)
        )
        if rule is not None:
            query = query.where(AlertRow.rule == rule)
        if event_prefix:
            query = query.where(AlertRow.event_type.startswith(event_prefix, autoescape=True))
        with self.db.session() as session:
            rows = list(session.scalars(query))
            deliveries = self._deliveries(session, [row.id for row in rows])
            return Listing(alert_of(row, deliveries[row.id]) for row in rows)

    def alert(self, alert_id: int) -> Alert:
        """One fired alert with its deliveries."""
        with self.db.session() as session:
            row = session.get(AlertRow, alert_id)
            if row is None or row.workspace != self.workspace:
                raise NotFound(f"alert {alert_id} does not exist")
            return alert_of(row, self._deliveries(session, [row.id])[row.id])

    def deliveries_of(self, alert_ids: list[int]) -> dict[int, list[AlertDelivery]]:
        """Each alert's deliveries, in channel order of the rule."""
        with self.db.session() as session:
            found = self._deliveries(session, alert_ids)
            return {a: [AlertDelivery.model_validate(d) for d in rows] for a, rows in found.items()}

    @staticmethod
    def _deliveries(session: Session, alert_ids: list[int]) -> dict[int, list[AlertDeliveryRow]]:
        found: dict[int, list[AlertDeliveryRow]] = {a: [] for a in alert_ids}
        if not alert_ids:
            return found
        query = (
            select(AlertDeliveryRow)
            .where(AlertDeliveryRow.alert_id.in_(alert_ids))
            .order_by(AlertDeliveryRow.id)
        )
        for row in session.scalars(query):
            found[row.alert_id].append(row)
        return found

    # -- processing -----------------------------------------------------------------------

    def process(self, limit: int = 500, *, budget_seconds: float = 5.0) -> Processed:
        """Turn new events into alerts, then attempt due deliveries (see the module)."""
        processed = Processed()
        with named_lock(self.db, SUBSCRIBER):
            subscription = self.events.subscription(SUBSCRIBER)
            events = subscription.poll(limit=limit)
            if events:
                with self.db.write() as session:
                    rules = list(
                        session.scalars(
                            select(AlertRuleRow)
                            .where(AlertRuleRow.enabled.is_(True))
                            .order_by(AlertRuleRow.name)
                        )
                    )
                    for event in events:
                        for rule in rules:
                            if self._applies(rule, event):
                                self._raise(session, rule, event, processed)
                    subscription.ack(events[-1].id, session=session)
        processed.attempts = self.deliveries.deliver(budget_seconds=budget_seconds)
        return processed

    @staticmethod
    def _applies(rule: AlertRuleRow, event: Event) -> bool:
        if event.id <= rule.after_event or not type_matches(rule.event_types, event.type):
            return False
        workspace, resource = unscoped_resource(event.resource)
        # A rule is its workspace's: another workspace's events are not its business, and
        # its filters name resources as its own workspace does.
        return workspace == rule.workspace and matches(
            rule.filters, dataclasses.replace(event, resource=resource)
        )

    def _raise(
        self, session: Session, rule: AlertRuleRow, event: Event, processed: Processed
    ) -> None:
        key = dedup_key(rule.dedup_by, event)
        last = session.scalar(
            select(AlertRow)
            .where(
                AlertRow.workspace == rule.workspace,
                AlertRow.rule == rule.name,
                AlertRow.dedup_key == key,
            )
            .order_by(AlertRow.id.desc())
            .limit(1)
        )
        if last is not None and event.time < last.time + timedelta(seconds=rule.cooldown_seconds):
            last.suppressed += 1
            last.last_suppressed_at = event.time
            rule.suppressed += 1
            processed.suppressed += 1
            return
        now = utcnow()
        alert = AlertRow(
            workspace=rule.workspace,
            rule=rule.name,
            severity=rule.severity,
            event_id=event.id,
            event_type=event.type,
            resource=event.resource,
            payload=event.payload,
            dedup_key=key,
            time=event.time,
            suppressed=0,
            suppressed_before=last.suppressed if last is not None else 0,
            last_suppressed_at=None,
            created_at=now,
        )
        session.add(alert)
        session.flush()
        for channel in rule.channels:
            session.add(
                AlertDeliveryRow(
                    alert_id=alert.id,
                    channel=channel,
                    state="pending",
                    attempts=0,
                    history=[],
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        rule.fired += 1
        rule.last_fired_at = event.time
        processed.fired.append(alert.id)
