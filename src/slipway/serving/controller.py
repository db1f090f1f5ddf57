"""The deployment controller: moves traffic to a new config phase by phase, and back.

It runs in the scheduler loop (any number of schedulers may run it: each endpoint is
advanced under the database's write lock). Per endpoint being created or updated:

1. wait until every live gateway reports the new config's models loaded — a model that
   fails to load (or whose digest does not match) fails the deployment before it gets any
   traffic, and the old config keeps serving;
2. for each phase of the strategy, give the new config its percentage and let it bake
   while the alarms watch its traffic; a tripped alarm rolls back to the old config;
3. when the last phase has baked, the new config takes all traffic.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.events import EventLog
from slipway.serving.alarms import TRIPPED, first_tripped, trip_reason
from slipway.serving.service import Endpoints, endpoint_resource, live_gateways, move
from slipway.serving.spec import EndpointSpec
from slipway.serving.states import EndpointStatus, Outcome
from slipway.serving.stats import Counters, read_counts
from slipway.serving.tables import (
    EndpointConfigRow,
    EndpointRow,
    GatewayModelRow,
    GatewayRow,
    ServingStatsRow,
)

log = logging.getLogger("slipway.serving.controller")

# Counters older than this are pruned; /metrics counters are totals over what is kept.
STATS_RETENTION = timedelta(days=7)
DELETE_GRACE = timedelta(seconds=30)
PRUNE_EVERY_SECONDS = 60.0
# The actor of the changes the controller decides on its own (an automatic rollback).
CONTROLLER = "deployment-controller"


@dataclass(frozen=True)
class Readiness:
    state: str  # "ready" | "failed" | "waiting"
    error: str = ""


def readiness(session: Session, endpoint: str, version: int) -> Readiness:
    """Whether every live gateway has ``version``'s models loaded (and at least one does)."""
    live = live_gateways(session)
    rows = session.scalars(
        select(GatewayModelRow).where(
            GatewayModelRow.endpoint == endpoint, GatewayModelRow.config_version == version
        )
    ).all()
    states = {r.gateway_id: r for r in rows if r.gateway_id in live}
    failed = [r for r in states.values() if r.state == "failed"]
    if failed:
        return Readiness("failed", failed[0].error)
    if live and all(states.get(g) is not None and states[g].state == "ready" for g in live):
        return Readiness("ready")
    return Readiness("waiting")


def gateway_trip(session: Session, endpoint: str, version: int) -> tuple[str, str] | None:
    """(alarm, reason) of a live gateway worker that tripped an alarm on ``version``."""
    live = live_gateways(session)
    for row in session.scalars(
        select(GatewayModelRow).where(
            GatewayModelRow.endpoint == endpoint,
            GatewayModelRow.config_version == version,
            GatewayModelRow.state == TRIPPED,
        )
    ):
        if row.gateway_id in live:
            alarm, _, reason = row.error.partition("\n")
            return alarm, f"{reason} (gateway {row.gateway_id})"
    return None


class DeploymentController:
    def __init__(self, db: Database, events: EventLog, endpoints: Endpoints) -> None:
        self.db = db
        self.events = events
        self.endpoints = endpoints
        self._pruned_at = 0.0

    def tick(self) -> list[str]:
        """Advance every endpoint one step; return what happened, for the log."""
        with self.db.session() as session:
            names = [
                r.name
                for r in session.scalars(
                    select(EndpointRow).where(
                        EndpointRow.status.in_(
                            [
                                EndpointStatus.CREATING.value,
                                EndpointStatus.UPDATING.value,
                                EndpointStatus.ROLLING_BACK.value,
                                EndpointStatus.DELETING.value,
                            ]
                        )
                    )
                )
            ]
        happened = []
        for name in names:
            try:
                with self.db.write() as session:
                    # Locked (FOR UPDATE on PostgreSQL; SQLite's write lock is already
                    # held): another scheduler, an update or a delete waits for this step.
                    row = session.get(EndpointRow, name, with_for_update=True)
                    if row is not None:
                        note = self._advance(session, row)
                        if note:
                            happened.append(f"{name}: {note}")
            except Exception:  # one endpoint's trouble must not stall the others
                log.exception("advancing endpoint %s failed", name)
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = time.monotonic()
            self._prune()
        for note in happened:
            log.info("%s", note)
        return happened

    # -- one endpoint --------------------------------------------------------------------

    def _advance(self, session: Session, row: EndpointRow) -> str | None:
        status = EndpointStatus(row.status)
        now = utcnow()
        if status is EndpointStatus.DELETING:
            return self._deleting(session, row, now)
        if status is EndpointStatus.ROLLING_BACK:
            return self._settle_rollback(session, row)
        if row.target_version is None:
            return None
        config = session.get(EndpointConfigRow, (row.name, row.target_version))
        assert config is not None
        spec = EndpointSpec.model_validate(config.spec)
        ready = readiness(session, row.name, row.target_version)
        if row.phase == 0:
            return self._start(session, row, config, spec, ready, now)
        if ready.state == "failed":
            return self._roll_back(session, row, config, f"a gateway failed to load: {ready.error}")
        phases = spec.deployment.phases()
        percent, bake = phases[row.phase - 1]
        started = row.phase_started_at or now
        counts = read_counts(
            session, endpoint=row.name, config_version=row.target_version, since=started
        )
        total = Counters()
        for value in counts.values():
            total.add(value)
        tripped = first_tripped(spec.deployment.alarms, total)
        if tripped is not None:
            alarm, measured = tripped
            reason = trip_reason(alarm, measured, total.requests, percent)
            return self._alarm(session, row, config, alarm.name, measured, reason)
        trip = gateway_trip(session, row.name, row.target_version)
        if trip is not None:  # a gateway worker judged its own counts and stopped routing
            return self._alarm(session, row, config, trip[0], None, trip[1])
        if (now - started).total_seconds() < bake:
            return None
        if row.phase < len(phases):
            row.phase += 1
            row.target_percent = phases[row.phase - 1][0]
            row.phase_started_at = now
            row.generation += 1
            row.updated_at = now
            self._shifted(session, row, len(phases))
            return f"phase {row.phase}: {row.target_percent:g}% to config {row.target_version}"
        return self._finish(session, row, config, now)

    def _alarm(
        self,
        session: Session,
        row: EndpointRow,
        config: EndpointConfigRow,
        alarm: str,
        measured: float | None,
        reason: str,
    ) -> str:
        self.events.append(
            "alert.raised",
            endpoint_resource(row.name),
            {"severity": "critical", "alarm": alarm, "value": measured, "reason": reason},
            session=session,
        )
        return self._roll_back(session, row, config, reason)

    def _start(
        self,
        session: Session,
        row: EndpointRow,
        config: EndpointConfigRow,
        spec: EndpointSpec,
        ready: Readiness,
        now: datetime,
    ) -> str | None:
        timeout = spec.deployment.load_timeout_seconds
        if ready.state == "waiting" and (now - config.created_at).total_seconds() > timeout:
            ready = Readiness("failed", f"models not loaded within {timeout:g} s")
        if ready.state == "failed":
            return self._load_failed(session, row, config, ready.error, now)
        if ready.state == "waiting":
            return None
        if row.active_version is None:  # creation (or repair of a failed creation)
            return self._finish(session, row, config, now)
        row.phase = 1
        row.target_percent = spec.deployment.phases()[0][0]
        row.phase_started_at = now
        row.generation += 1
        row.updated_at = now
        self._shifted(session, row, len(spec.deployment.phases()))
        return f"models loaded; {row.target_percent:g}% to config {row.target_version}"

    def _shifted(self, session: Session, row: EndpointRow, phases: int) -> None:
        row.status_reason = (
            f"{row.target_percent:g}% of traffic on config {row.target_version}"
            f" (phase {row.phase} of {phases}, baking)"
        )
        self.events.append(
            "endpoint.traffic_shifted",
            endpoint_resource(row.name),
            {"config_version": row.target_version, "percent": row.target_percent},
            session=session,
        )

    def _load_failed(
        self,
        session: Session,
        row: EndpointRow,
        config: EndpointConfigRow,
        error: str,
        now: datetime,
    ) -> str:
        config.outcome = Outcome.FAILED.value
        config.outcome_reason = error
        config.finished_at = now
        row.target_version = None
        row.target_percent = 0.0
        row.phase = 0
        reason = f"config {config.version} failed to load: {error}"
        self.events.append(
            "endpoint.deployment_failed",
            endpoint_resource(row.name),
            {"config_version": config.version, "error": error},
            session=session,
        )
        if row.active_version is None:
            move(session, self.events, row, EndpointStatus.FAILED, reason)
        else:
            move(session, self.events, row, EndpointStatus.IN_SERVICE, reason)
        return reason

    def _finish(
        self, session: Session, row: EndpointRow, config: EndpointConfigRow, now: datetime
    ) -> str:
        if row.active_version is not None:
            old = session.get(EndpointConfigRow, (row.name, row.active_version))
            if old is not None:
                old.outcome = Outcome.RETIRED.value
                old.finished_at = old.finished_at or now
        config.outcome = Outcome.DEPLOYED.value
        config.finished_at = now
        row.active_version = config.version
        row.target_version = None
        row.target_percent = 0.0
        row.phase = 0
        row.phase_started_at = None
        self.events.append(
            "endpoint.deployed",
            endpoint_resource(row.name),
            {"config_version": config.version},
            session=session,
        )
        move(session, self.events, row, EndpointStatus.IN_SERVICE, f"config {config.version}")
        return f"config {config.version} serves all traffic"

    def _roll_back(
        self, session: Session, row: EndpointRow, config: EndpointConfigRow, reason: str
    ) -> str:
        now = utcnow()
        config.outcome = Outcome.ROLLED_BACK.value
        config.outcome_reason = reason
        config.finished_at = now
        row.target_version = None
        row.target_percent = 0.0
        row.phase = 0
        row.phase_started_at = None
        self.events.append(
            "endpoint.rolled_back",
            endpoint_resource(row.name),
            {"config_version": config.version, "to": row.active_version, "reason": reason},
            session=session,
        )
        # Its own decision, not a caller's: audited, unlike the phases it moves through.
        self.endpoints.audit.changed(
            CONTROLLER,
            "endpoint.auto_rollback",
            endpoint_resource(row.name),
            {"config_version": config.version, "to": row.active_version, "reason": reason},
            session=session,
        )
        move(session, self.events, row, EndpointStatus.ROLLING_BACK, reason)
        return f"rolling back config {config.version}: {reason}"

    def _settle_rollback(self, session: Session, row: EndpointRow) -> str | None:
        """RollingBack ends once every live gateway has applied the rollback."""
        live = live_gateways(session)
        refreshed = session.execute(
            select(GatewayRow.gateway_id, GatewayRow.refreshed_at).where(
                GatewayRow.gateway_id.in_(live)
            )
        ).all()
        if any(at < row.updated_at for _, at in refreshed):
            return None
        move(session, self.events, row, EndpointStatus.IN_SERVICE, row.status_reason)
        return f"rolled back to config {row.active_version}"

    def _deleting(self, session: Session, row: EndpointRow, now: datetime) -> str | None:
        live = live_gateways(session)
        still = session.scalars(
            select(GatewayModelRow.gateway_id).where(GatewayModelRow.endpoint == row.name)
        ).all()
        if any(g in live for g in still) and now - row.updated_at < DELETE_GRACE:
            return None
        self.endpoints.finish_delete(session, row.name)
        return "deleted"

    def _prune(self) -> None:
        cutoff = utcnow() - STATS_RETENTION
        with self.db.session() as session:
            session.execute(delete(ServingStatsRow).where(ServingStatsRow.window_start < cutoff))
            dead = utcnow() - timedelta(hours=1)
            gone = session.scalars(
                select(GatewayRow.gateway_id).where(GatewayRow.heartbeat_at < dead)
            ).all()
            if gone:
                session.execute(delete(GatewayModelRow).where(GatewayModelRow.gateway_id.in_(gone)))
                session.execute(delete(GatewayRow).where(GatewayRow.gateway_id.in_(gone)))
