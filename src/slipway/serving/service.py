"""The endpoint service (control plane): create, update, roll back, describe and delete.

It never loads a model: it validates a spec, resolves its model references against the
registry's deployment policy, stores a new immutable config and moves the endpoint's state.
Gateways notice the change (``generation``) and load; the :mod:`deployment controller
<slipway.serving.controller>` moves traffic once they report the models ready.

It hands out :mod:`resources <slipway.serving.resources>` (:class:`Endpoint`,
:class:`Deployment`, :class:`EndpointStats`), built from the rows here; the rows keep the
format the gateway reads.
:meth:`Endpoints.invoke` sends a request to the gateway, as any client does.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.settings import ServingSettings
from slipway.core.specs import parse_spec
from slipway.core.waiting import wait_until_final
from slipway.core.workspace import (
    DEFAULT_WORKSPACE,
    scoped_name,
    scoped_resource,
    split_scoped,
)
from slipway.registry.lineage import Lineage
from slipway.registry.models import parse_model_ref
from slipway.registry.resources import ModelVersion
from slipway.registry.service import Registry
from slipway.security.audit import AuditLog
from slipway.serving import invoke as invocations
from slipway.serving.resources import (
    Deployment,
    Endpoint,
    EndpointStats,
    GatewayLoad,
    Prediction,
    VariantStats,
)
from slipway.serving.spec import DeploymentSpec, EndpointSpec, EnrichmentSpec, Strategy
from slipway.serving.states import UPDATABLE, EndpointStatus, Outcome, can_move
from slipway.serving.stats import Series, variant_series, variant_stats
from slipway.serving.tables import (
    EndpointConfigRow,
    EndpointRow,
    GatewayModelRow,
    GatewayRow,
    ServingStatsRow,
)

if TYPE_CHECKING:
    from slipway.features.views.service import FeatureViews

# A gateway that has not beaten for this long is not counted as serving.
GATEWAY_LIVENESS_SECONDS = 10.0
# Endpoints described per round of queries: bounds the parameters of their IN lists.
_DESCRIBE_BATCH = 500
# What ``settled`` says once no rollout is under way (Deleting: it never will be).
SETTLED = frozenset(
    {EndpointStatus.IN_SERVICE.value, EndpointStatus.FAILED.value, EndpointStatus.DELETING.value}
)


def settled(endpoint: Endpoint) -> str:
    """The endpoint's status once no rollout is under way, else ``"moving"``: what
    :meth:`Endpoints.wait` polls on."""
    if endpoint.target_version is not None and endpoint.status is not EndpointStatus.DELETING:
        return "moving"
    return endpoint.status.value


def endpoint_resource(key: str) -> str:
    """The event's and audit entry's resource of the endpoint stored under ``key`` (a
    :func:`~slipway.core.workspace.scoped_name`): ``endpoint/<name>``, in its workspace."""
    workspace, name = split_scoped(key)
    return scoped_resource(workspace, f"endpoint/{name}")


def move(
    session: Session,
    events: EventLog,
    row: EndpointRow,
    status: EndpointStatus,
    reason: str = "",
) -> None:
    """Change ``row``'s status (checked against the state machine) and emit the event."""
    current = EndpointStatus(row.status)
    if current is not status and not can_move(current, status):
        raise Conflict(
            f"endpoint {split_scoped(row.name)[1]!r} is {current.value}; it cannot become"
            f" {status.value}",
            details={"status": current.value},
        )
    row.status = status.value
    row.status_reason = reason
    row.generation += 1
    row.updated_at = utcnow()
    events.append(
        "endpoint.status_changed",
        endpoint_resource(row.name),
        {"from": current.value, "to": status.value, "reason": reason},
        session=session,
    )


class Endpoints:
    """The endpoints of one workspace (:meth:`in_workspace` gives another's).

    Endpoints share the gateway's one URL space, so they are stored under their
    :func:`~slipway.core.workspace.scoped_name` (``<workspace>/<name>``; the bare name in
    the default workspace, as before workspaces): the gateway, the deployment controller
    and the traffic counters key by it and need no workspace of their own. A workspace's
    endpoints serve its models (its registry) and are called at
    ``/workspaces/<workspace>/endpoints/<name>/invocations`` on the gateway."""

    def __init__(
        self,
        db: Database,
        events: EventLog,
        audit: AuditLog,
        registry: Registry,
        feature_views: FeatureViews,
        *,
        gateway_url: str | None = None,
        gateway_verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.workspace = registry.workspace
        self.db = db
        self.events = events
        self.audit = audit
        self.registry = registry
        # An enrichment naming a feature view is pinned to one of its versions here.
        self.feature_views = feature_views
        # Where invocations go: the gateway of these settings (every endpoint's ``url``),
        # and what its HTTPS certificate is checked against (the platform's own file).
        self.gateway_url = gateway_url or invocations.gateway_url(ServingSettings())
        self.gateway_verify = gateway_verify

    def in_workspace(self, workspace: str) -> Endpoints:
        """The endpoints of ``workspace`` (a validated name), serving its models."""
        if workspace == self.workspace:
            return self
        return Endpoints(
            self.db,
            self.events,
            self.audit,
            self.registry.in_workspace(workspace),
            self.feature_views.in_workspace(workspace),
            gateway_url=self.gateway_url,
            gateway_verify=self.gateway_verify,
        )

    def _key(self, name: str) -> str:
        """Where endpoint ``name`` of this workspace is stored (checked as a name)."""
        return scoped_name(self.workspace, validate_name(name, field="endpoint"))

    # -- writes ------------------------------------------------------------------------

    def resolve(self, spec: EndpointSpec) -> EndpointSpec:
        """``spec`` with every variant's model pinned to a version the policy allows, and
        an enrichment's feature view pinned to a version (see :meth:`_pin_view`)."""
        resolved = spec.model_copy(deep=True)
        served: dict[str, ModelVersion] = {}
        for index, variant in enumerate([*resolved.variants, *resolved.shadow_variants]):
            name, ref = parse_model_ref(variant.model, field=f"variants.{index}.model")
            assert ref is not None  # the spec refuses bare names
            version = self.registry.check_deployable(name, ref, spec.environment)
            variant.version = version.version
            served[variant.name] = version
        if resolved.enrichment is not None and resolved.enrichment.feature_view is not None:
            resolved.enrichment.feature_view = self._pin_view(resolved.enrichment, served)
        if resolved.multi_model is not None:
            for name in resolved.multi_model.models:
                if not self.registry.versions(name):
                    raise NotFound(f"model {name!r} has no versions", details={"model": name})
        return resolved

    def _pin_view(self, enrichment: EnrichmentSpec, served: dict[str, ModelVersion]) -> str:
        """The ``name:version`` an enrichment by a feature view serves: the version it
        names; else the one every served model version was trained on (its lineage's
        training set); else the latest. A model trained on another view, or on another
        version or definition of this one, would be fed columns it never saw in training:
        refused, as is a view or version that does not exist — InvalidInput naming
        ``enrichment.feature_view``, before anything is written. Shadow variants count:
        they predict on the same enriched rows."""
        field = "enrichment.feature_view"
        view_ref = enrichment.view
        assert view_ref is not None  # only called for an enrichment naming a view
        name, explicit = view_ref
        try:
            latest = self.feature_views.get(name)
        except NotFound as exc:
            raise InvalidInput(exc.message, field=field) from None
        trained = {
            variant: Lineage(training_set=version.lineage.get("training_set")).feature_view
            for variant, version in served.items()
        }
        for variant, bound in trained.items():
            if bound is not None and bound["name"] != name:
                model = served[variant]
                raise InvalidInput(
                    f"variant {variant!r} serves {model.name}:{model.version}, trained on"
                    f" feature view {bound['name']!r}, not {name!r}",
                    field=field,
                    details={"variant": variant, "trained_on": bound},
                )
        versions = {b["version"] for b in trained.values() if b is not None}
        if explicit is None and len(versions) > 1:
            raise InvalidInput(
                f"the variants' models were trained on different versions of feature view"
                f" {name!r} ({', '.join(str(v) for v in sorted(versions, key=str))}): name"
                " the one to serve",
                field=field,
                details={"trained_on": {v: b for v, b in trained.items() if b is not None}},
            )
        wanted = explicit if explicit is not None else next(iter(versions), latest.version)
        try:
            view = latest if wanted == latest.version else self.feature_views.get(name, wanted)
        except NotFound as exc:
            raise InvalidInput(exc.message, field=field) from None
        try:
            self.feature_views.check_online(view)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=field) from None
        for variant, bound in trained.items():
            if bound is None:
                continue  # trained without a view: nothing to hold it to
            if bound["version"] != view.version or (
                bound["digest"] is not None and bound["digest"] != view.digest
            ):
                model = served[variant]
                what = (
                    f"version {bound['version']}"
                    if bound["version"] != view.version
                    else f"a different definition of version {view.version} (digest"
                    f" {str(bound['digest'])[:12]}…)"
                )
                raise InvalidInput(
                    f"variant {variant!r} serves {model.name}:{model.version}, trained on"
                    f" {what} of feature view {name!r}; this endpoint would serve version"
                    f" {view.version}",
                    field=field,
                    details={"variant": variant, "trained_on": bound, "serving": view.version},
                )
        return f"{view.name}:{view.version}"

    def create(self, spec: EndpointSpec | dict[str, Any], *, actor: str) -> Endpoint:
        """Store ``spec`` as config 1 of a new endpoint (status Creating): gateways load
        it, then the deployment controller puts it InService."""
        parsed = self.resolve(parse_spec(EndpointSpec, spec))
        now = utcnow()
        try:
            self._insert(parsed, actor, now)
        except IntegrityError:
            # Created by someone else since the check (PostgreSQL: two creations at once).
            raise Conflict(f"endpoint {parsed.name!r} already exists") from None
        self._audit(actor, "endpoint.create", parsed.name, {"config_version": 1})
        return self.describe(parsed.name)

    def _insert(self, parsed: EndpointSpec, actor: str, now: datetime) -> None:
        key = self._key(parsed.name)
        with self.db.write() as session:
            if session.get(EndpointRow, key) is not None:
                raise Conflict(f"endpoint {parsed.name!r} already exists")
            session.add(
                EndpointRow(
                    name=key,
                    status=EndpointStatus.CREATING.value,
                    status_reason="waiting for gateways to load the models",
                    active_version=None,
                    target_version=1,
                    target_percent=100.0,
                    phase=0,
                    phase_started_at=None,
                    generation=1,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
            )
            session.add(self._config_row(key, parsed, 1, actor, now))
            self.events.append(
                "endpoint.created",
                endpoint_resource(key),
                {"config_version": 1, "variants": _variant_refs(parsed)},
                session=session,
            )

    def update(
        self,
        name: str,
        spec: EndpointSpec | dict[str, Any],
        *,
        actor: str,
        rollback_of: int | None = None,
    ) -> Endpoint:
        """Store ``spec`` as the next config and start rolling it out with the strategy of
        its ``deployment`` (all at once, canary or linear; status Updating)."""
        parsed = parse_spec(EndpointSpec, spec)
        if parsed.name != name:
            raise InvalidInput(
                f"the spec names endpoint {parsed.name!r}, not {name!r}", field="name"
            )
        parsed = self.resolve(parsed)
        now = utcnow()
        with self.db.write() as session:
            row = self._row(session, name, lock=True)
            status = EndpointStatus(row.status)
            if status not in UPDATABLE:
                raise Conflict(
                    f"endpoint {name!r} is {status.value}; wait until it is InService to change it",
                    details={"status": status.value},
                )
            version = self._next_version(session, row.name)
            session.add(
                self._config_row(row.name, parsed, version, actor, now, rollback_of=rollback_of)
            )
            row.target_version = version
            row.target_percent = 0.0
            row.phase = 0
            row.phase_started_at = None
            if status is EndpointStatus.FAILED and row.active_version is None:
                row.target_percent = 100.0  # nothing else serves: no canary to run
            move(session, self.events, row, EndpointStatus.UPDATING, "loading the new config")
            self.events.append(
                "endpoint.updated",
                endpoint_resource(row.name),
                {
                    "config_version": version,
                    "previous": row.active_version,
                    "strategy": parsed.deployment.strategy.value,
                    "rollback_of": rollback_of,
                },
                session=session,
            )
        self._audit(actor, "endpoint.update", name, {"config_version": version})
        return self.describe(name)

    def rollback(self, name: str, *, to_version: int | None = None, actor: str) -> Endpoint:
        """Deploy an earlier config again (the one before the active one by default).

        The old config is stored again as a new version (``rollback_of`` points back), so
        the history stays append-only; it goes out all at once, since it served before.
        """
        with self.db.session() as session:
            row = self._row(session, name)
            status = EndpointStatus(row.status)
            if status not in UPDATABLE:
                raise Conflict(
                    f"endpoint {name!r} is {status.value}; wait until it is InService to roll"
                    " it back",
                    details={"status": status.value},
                )
            active = row.active_version
            if to_version is None:
                earlier = session.scalars(
                    select(EndpointConfigRow)
                    .where(
                        EndpointConfigRow.endpoint == row.name,
                        EndpointConfigRow.version < (active or 0),
                        EndpointConfigRow.outcome.in_(
                            [Outcome.DEPLOYED.value, Outcome.RETIRED.value]
                        ),
                    )
                    .order_by(EndpointConfigRow.version.desc())
                    .limit(1)
                ).first()
                if earlier is None:
                    raise Conflict(f"endpoint {name!r} has no earlier deployed config")
                to_version = earlier.version
            old = session.get(EndpointConfigRow, (row.name, to_version))
            if old is None:
                raise NotFound(f"endpoint {name!r} has no config version {to_version}")
            spec = EndpointSpec.model_validate(old.spec)
        spec.deployment = DeploymentSpec(strategy=Strategy.ALL_AT_ONCE)
        for variant in [*spec.variants, *spec.shadow_variants]:
            variant.model = f"{variant.model_name}:{variant.version}"
        return self.update(name, spec, actor=actor, rollback_of=to_version)

    def delete(self, name: str, *, actor: str) -> None:
        with self.db.write() as session:
            row = self._row(session, name, lock=True)
            if row.status == EndpointStatus.DELETING.value:
                return  # already going: one audit record per deletion
            move(session, self.events, row, EndpointStatus.DELETING, "deleted by " + actor)
        self._audit(actor, "endpoint.delete", name, {})

    def finish_delete(self, session: Session, key: str) -> None:
        """Remove the rows of the endpoint stored under ``key`` (its scoped name, of any
        workspace: the deployment controller's) once no gateway serves it any more."""
        session.execute(delete(EndpointConfigRow).where(EndpointConfigRow.endpoint == key))
        session.execute(delete(GatewayModelRow).where(GatewayModelRow.endpoint == key))
        session.execute(delete(ServingStatsRow).where(ServingStatsRow.endpoint == key))
        session.execute(delete(EndpointRow).where(EndpointRow.name == key))
        self.events.append("endpoint.deleted", endpoint_resource(key), {}, session=session)

    # -- reads -------------------------------------------------------------------------

    def describe(self, name: str) -> Endpoint:
        """The endpoint, its active and rolling-out configs, and what gateways loaded."""
        with self.db.session() as session:
            row = self._row(session, name)
            return self._endpoints(session, [row], live_gateways(session))[0]

    def list(self) -> Listing[Endpoint]:
        """Every endpoint of the workspace, by name."""
        with self.db.session() as session:
            live = live_gateways(session)
            mine = (
                ~EndpointRow.name.contains("/")
                if self.workspace == DEFAULT_WORKSPACE
                else EndpointRow.name.startswith(f"{self.workspace}/", autoescape=True)
            )
            rows = session.scalars(select(EndpointRow).where(mine).order_by(EndpointRow.name))
            return self._endpoints(session, rows.all(), live)

    def history(self, name: str) -> Listing[Deployment]:
        """Every config ever stored for the endpoint, oldest first, with its outcome."""
        with self.db.session() as session:
            key = self._row(session, name).name
            rows = session.scalars(
                select(EndpointConfigRow)
                .where(EndpointConfigRow.endpoint == key)
                .order_by(EndpointConfigRow.version)
            ).all()
            return Listing(_deployment(c) for c in rows)

    def stats(
        self, name: str, *, since: datetime | None = None, config_version: int | None = None
    ) -> EndpointStats:
        """Requests, errors, latency percentiles (within 1%) and prediction mean per
        variant (shadow ones too), summed over every gateway worker, counted in 5-second
        windows: since ``since`` (with a time zone; the window holding it is included
        whole) and for ``config_version`` when given. No variants without traffic; gateways
        add their counts about once a second. NotFound for an unknown endpoint, InvalidInput
        (``since``) for a time without a zone or out of range."""
        with self.db.session() as session:
            key = self._row(session, name).name  # NotFound naming it as its workspace does
            variants = variant_stats(session, key, since=since, config_version=config_version)
        return EndpointStats(
            endpoint=name,
            since=since,
            config_version=config_version,
            variants={k: VariantStats.model_validate(v) for k, v in variants.items()},
        )

    def series(self, name: str, *, since: datetime, config_version: int | None = None) -> Series:
        """Traffic over time per variant (shadow ones too), for charts: one
        :class:`~slipway.serving.stats.TrafficWindow` (window start, requests, errors,
        p50 and p99 latency in ms from the merged sketches) per stored 5-second window
        since ``since`` (with a time zone; the window holding it included), oldest first,
        summed over every gateway worker, for ``config_version`` when given. Windows
        without traffic are left out. Meant for recent spans (minutes): it reads every
        row since then. NotFound for an unknown endpoint, InvalidInput (``since``) for a
        time without a zone or out of range."""
        with self.db.session() as session:
            key = self._row(session, name).name
            return variant_series(session, key, since=since, config_version=config_version)

    def wait(self, name: str, timeout: float = 600.0, interval: float = 1.0) -> Endpoint:
        """Poll until no rollout is under way (InService, Failed or Deleting);
        ``TimeoutError`` after ``timeout`` seconds. The deployment controller (``slipway
        up`` or ``slipway scheduler``) moves it. A rolled-back or failed update leaves the
        endpoint InService: ``latest.outcome`` says how the newest config ended."""
        return wait_until_final(
            lambda: self.describe(name),
            settled,
            SETTLED,
            what=f"endpoint {name}",
            timeout=timeout,
            interval=interval,
        )

    def invoke(
        self,
        name: str,
        payload: invocations.Payload,
        *,
        variant: str | None = None,
        target_model: str | None = None,
        inference_id: str | None = None,
        timeout: float = 60.0,
    ) -> Prediction:
        """Predict with the endpoint: ``payload`` (a DataFrame, a mapping in one of MLflow's
        JSON formats, or CSV text) goes to the gateway's invocations, as any client's —
        with the token in ``SLIPWAY_TOKEN``, which a gateway with auth on asks for."""
        return invocations.invoke(
            self.gateway_url,
            self._key(name),
            payload,
            variant=variant,
            target_model=target_model,
            inference_id=inference_id,
            timeout=timeout,
            token=os.environ.get("SLIPWAY_TOKEN") or None,
            verify=self.gateway_verify,
        )

    def config(self, name: str, version: int) -> EndpointSpec:
        with self.db.session() as session:
            key = self._row(session, name).name
            row = session.get(EndpointConfigRow, (key, version))
            if row is None:
                raise NotFound(f"endpoint {name!r} has no config version {version}")
            return EndpointSpec.model_validate(row.spec)

    # -- helpers -----------------------------------------------------------------------

    def _row(self, session: Session, name: str, *, lock: bool = False) -> EndpointRow:
        """The endpoint's row; with ``lock``, locked until the transaction ends.

        Every change of an endpoint reads its state, checks it and writes it back. On
        SQLite :meth:`Database.write` already serializes that; on PostgreSQL two callers
        would both read InService and both store config N+1 (the second failing on the
        primary key: a 500, not the 409 it should be). ``SELECT ... FOR UPDATE`` makes the
        second wait for the first and then read its outcome (Updating: Conflict)."""
        row = session.get(EndpointRow, self._key(name), with_for_update=lock)
        if row is None:
            raise NotFound(f"endpoint {name!r} does not exist", details={"endpoint": name})
        return row

    def _next_version(self, session: Session, key: str) -> int:
        latest = session.scalar(
            select(func.max(EndpointConfigRow.version)).where(EndpointConfigRow.endpoint == key)
        )
        return int(latest or 0) + 1

    def _config_row(
        self,
        key: str,
        spec: EndpointSpec,
        version: int,
        actor: str,
        now: datetime,
        *,
        rollback_of: int | None = None,
    ) -> EndpointConfigRow:
        return EndpointConfigRow(
            endpoint=key,
            version=version,
            spec=spec.public(),
            outcome=Outcome.PENDING.value,
            outcome_reason="",
            rollback_of=rollback_of,
            created_by=actor,
            created_at=now,
            finished_at=None,
        )

    def _endpoints(
        self, session: Session, rows: Sequence[EndpointRow], live: set[str]
    ) -> Listing[Endpoint]:
        """``rows`` described, in their order, with three queries whatever their number
        (the console's dashboard and lists describe every endpoint on each load): their
        active and target configs, the newest config of each, and the gateways' loads."""
        described: Listing[Endpoint] = Listing()
        for start in range(0, len(rows), _DESCRIBE_BATCH):
            batch = rows[start : start + _DESCRIBE_BATCH]
            names = [row.name for row in batch]
            newest = dict(
                session.execute(
                    select(EndpointConfigRow.endpoint, func.max(EndpointConfigRow.version))
                    .where(EndpointConfigRow.endpoint.in_(names))
                    .group_by(EndpointConfigRow.endpoint)
                ).all()
            )
            wanted = {
                (row.name, version)
                for row in batch
                for version in (row.active_version, row.target_version, newest.get(row.name))
                if version
            }
            configs: dict[str, dict[int, EndpointConfigRow]] = {}
            if wanted:
                for config in session.scalars(
                    select(EndpointConfigRow).where(
                        tuple_(EndpointConfigRow.endpoint, EndpointConfigRow.version).in_(
                            sorted(wanted)
                        )
                    )
                ):
                    configs.setdefault(config.endpoint, {})[config.version] = config
            loaded: dict[str, list[GatewayModelRow]] = {}
            for load in session.scalars(
                select(GatewayModelRow)
                .where(GatewayModelRow.endpoint.in_(names))
                .order_by(GatewayModelRow.gateway_id, GatewayModelRow.config_version)
            ):
                if load.gateway_id in live:
                    loaded.setdefault(load.endpoint, []).append(load)
            for row in batch:
                own = configs.get(row.name, {})
                latest = newest.get(row.name)
                described.append(
                    _describe(
                        row,
                        own,
                        own.get(latest) if latest else None,
                        loaded.get(row.name, []),
                        invocations.invocation_url(self.gateway_url, row.name),
                        self.workspace,
                    )
                )
        return described

    def _audit(self, actor: str, action: str, name: str, details: dict[str, Any]) -> None:
        self.audit.record(
            actor=actor,
            action=action,
            resource=endpoint_resource(self._key(name)),
            outcome="success",
            details=details,
        )


def live_gateways(session: Session) -> set[str]:
    cutoff = utcnow().timestamp() - GATEWAY_LIVENESS_SECONDS
    rows = session.execute(select(GatewayRow.gateway_id, GatewayRow.heartbeat_at)).all()
    return {gid for gid, beat in rows if beat.timestamp() >= cutoff}


def _variant_refs(spec: EndpointSpec) -> dict[str, str]:
    return {v.name: f"{v.model_name}:{v.version}" for v in [*spec.variants, *spec.shadow_variants]}


def _deployment(row: EndpointConfigRow) -> Deployment:
    return Deployment.model_validate(row)  # the resource's fields are the row's columns


def live_weights(
    active: EndpointSpec | None, target: EndpointSpec | None, percent: float
) -> dict[str, float]:
    """The share of traffic (0..1) each production variant name gets right now."""
    out: dict[str, float] = {}
    for spec, share in ((active, 1 - percent / 100), (target, percent / 100)):
        if spec is None or share <= 0:
            continue
        total = sum(v.weight for v in spec.variants)
        for variant in spec.variants:
            key = variant.name
            out[key] = out.get(key, 0.0) + share * variant.weight / total
    return out


def _describe(
    row: EndpointRow,
    configs: dict[int, EndpointConfigRow],
    latest: EndpointConfigRow | None,
    loaded: Sequence[GatewayModelRow],
    url: str,
    workspace: str,
) -> Endpoint:
    active_row = configs.get(row.active_version) if row.active_version else None
    target_row = configs.get(row.target_version) if row.target_version else None
    active = _deployment(active_row) if active_row else None
    target = _deployment(target_row) if target_row else None
    percent = row.target_percent if target else 0.0
    return Endpoint(
        name=split_scoped(row.name)[1],
        workspace=workspace,
        status=EndpointStatus(row.status),
        status_reason=row.status_reason,
        active_version=row.active_version,
        target_version=row.target_version,
        target_percent=row.target_percent,
        phase=row.phase,
        generation=row.generation,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        traffic=live_weights(
            active.spec if active else None, target.spec if target else None, percent
        ),
        active=active,
        target=target,
        latest=_deployment(latest) if latest else None,
        gateways=[
            GatewayLoad(
                gateway=r.gateway_id, config_version=r.config_version, state=r.state, error=r.error
            )
            for r in loaded
        ],
        url=url,
    )
