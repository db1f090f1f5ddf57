"""Monitors and their runs: create, schedule, run on demand, execute, report.

A run is a row (``queued`` → ``running`` → ``completed`` | ``failed``) plus a work item on
the ``monitoring`` queue; a worker executes it (:meth:`Monitoring.execute`), writes the
report to ``monitoring/reports/<monitor>/<run id>.json`` and, in the same transaction as
the run's outcome, appends ``monitor.run_completed`` (or ``monitor.run_failed``) and — when
anything was violated — ``monitor.violations``, which alerts and retraining triggers
listen to. A completed run's status is ``no_violations``, ``violations`` or ``no_data``
(nothing captured, or nothing labelled yet, in its window). Model-quality and bias runs
both read ground truth (:mod:`slipway.monitoring.model_quality`,
:mod:`slipway.monitoring.bias_monitor`).

Scheduled runs are started by :meth:`Monitoring.tick` from the scheduler loop: the run
row's (monitor, scheduled_for) key is unique, so a tick starts a run once however many
schedulers race for it. Missed ticks during downtime collapse into the latest one.

A monitor's spec can be replaced in place (:meth:`Monitoring.update`, what a declarative
apply does when a spec changed), its kind excepted: its runs and their reports, its
enabled state and last status stay.

Creating, updating, enabling, disabling, deleting and running a monitor on demand, and
uploading ground truth, are audited (``monitor.*``, ``ground_truth.upload``) with the
caller's actor; scheduled runs are not (the run keeps ``created_by`` = ``scheduler``).
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.cron import next_after
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.names import validate_name
from slipway.core.queue import WorkQueue
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.core.workspace import scoped_name, scoped_resource
from slipway.evaluation import ab
from slipway.features.views.service import FeatureViews
from slipway.monitoring import (
    ab_test,
    attribution,
    bias_monitor,
    capture,
    data_quality,
    ground_truth,
    model_quality,
    served,
    skew_monitor,
)
from slipway.monitoring.baselines import Baselines
from slipway.monitoring.resources import (
    ABReport,
    GroundTruthUpload,
    Monitor,
    MonitorReport,
    MonitorRun,
)
from slipway.monitoring.spec import QUEUE, RUN_KIND, MonitorSpec
from slipway.monitoring.tables import BaselineRow, MonitorRow, MonitorRunRow
from slipway.registry.predict import LoadedModel, load_model
from slipway.registry.service import Registry
from slipway.security.audit import AuditLog
from slipway.serving.service import Endpoints, endpoint_resource

REPORTS = "monitoring/reports"
MAX_RUNS_LISTED = 1000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_of(row: MonitorRunRow) -> MonitorRun:
    return MonitorRun.model_validate(row)


def monitor_of(row: MonitorRow) -> Monitor:
    return Monitor.model_validate(row)


class Monitoring:
    """The monitors of one workspace (:meth:`in_workspace` gives another's): they watch
    its endpoints (their captures and ground truth in its share of the artifact root),
    score against its baselines, load its models and recompute its feature views. The
    scheduler's :meth:`tick` and a worker's :meth:`execute` serve every workspace: a run
    knows its own."""

    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        events: EventLog,
        artifacts: ArtifactStore,
        baselines: Baselines,
        registry: Registry,
        endpoints: Endpoints,
        feature_views: FeatureViews,
        audit: AuditLog | None = None,
    ) -> None:
        self.db = db
        self.queue = queue
        self.events = events
        self.artifacts = artifacts
        self.baselines = baselines
        self.registry = registry
        self.endpoints = endpoints
        self.feature_views = feature_views
        self.audit = audit or AuditLog(db)
        self.workspace = registry.workspace

    def in_workspace(self, workspace: str) -> Monitoring:
        """The monitors of ``workspace`` (a validated name)."""
        if workspace == self.workspace:
            return self
        return Monitoring(
            self.db,
            self.queue,
            self.events,
            self.artifacts,
            self.baselines.in_workspace(workspace),
            self.registry.in_workspace(workspace),
            self.endpoints.in_workspace(workspace),
            self.feature_views.in_workspace(workspace),
            self.audit,
        )

    def _resource(self, resource: str) -> str:
        """An event's or audit entry's resource, in this workspace."""
        return scoped_resource(self.workspace, resource)

    def _endpoint_key(self, endpoint: str) -> str:
        """Where the gateway keeps this workspace's ``endpoint``: its captures' and
        labels' key (:func:`~slipway.core.workspace.scoped_name`)."""
        return scoped_name(self.workspace, endpoint)

    # -- monitors ----------------------------------------------------------------------

    def create(self, spec: MonitorSpec | dict[str, Any], *, actor: str) -> Monitor:
        monitor = self._checked(spec)
        now = utcnow()
        first = self._next_run(monitor, now)
        with self.db.write() as session:
            if session.get(MonitorRow, (self.workspace, monitor.name)) is not None:
                raise Conflict(f"monitor {monitor.name!r} exists already")
            self._check_baseline_kept(session, monitor)
            row = MonitorRow(
                workspace=self.workspace,
                name=monitor.name,
                kind=monitor.kind,
                endpoint=monitor.endpoint,
                spec=monitor.model_dump(mode="json"),
                schedule=monitor.schedule,
                timezone=monitor.timezone,
                enabled=True,
                next_run_at=first,
                last_status=None,
                runs=0,
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            self.events.append(
                "monitor.created",
                self._resource(f"monitor/{monitor.name}"),
                {"monitor": monitor.name, "kind": monitor.kind, "endpoint": monitor.endpoint},
                session=session,
            )
            self.audit.changed(
                actor,
                "monitor.create",
                self._resource(f"monitor/{monitor.name}"),
                {"kind": monitor.kind, "endpoint": monitor.endpoint},
                session=session,
            )
            session.flush()
            return monitor_of(row)

    def update(self, spec: MonitorSpec | dict[str, Any], *, actor: str) -> Monitor:
        """Replace the spec of the monitor ``spec.name`` (NotFound when there is none),
        checked as :meth:`create` checks it; nothing changes when it is refused.

        Its kind may not change (InvalidInput naming ``kind``): its runs' reports and the
        alert rules and triggers reading them are of that kind — delete the monitor and
        create it anew instead. Its runs, enabled state and last status stay; its next
        scheduled run is recomputed from now when its schedule or time zone changed (none
        when it has no schedule left). A run still queued runs with the new spec (a worker
        reads the spec when it starts a run), over the window it was queued with."""
        monitor = self._checked(spec)
        now = utcnow()
        with self.db.write() as session:
            # Locked against a scheduler tick starting a run of the old spec meanwhile:
            # the tick skips it, or has committed its run before this reads it.
            row = session.get(MonitorRow, (self.workspace, monitor.name), with_for_update=True)
            if row is None:
                raise NotFound(f"monitor {monitor.name!r} does not exist")
            if monitor.kind != row.kind:
                raise InvalidInput(
                    f"monitor {monitor.name!r} is a {row.kind} monitor; its kind cannot"
                    f" change to {monitor.kind} (delete it and create it anew)",
                    field="kind",
                )
            self._check_baseline_kept(session, monitor)
            if (monitor.schedule, monitor.timezone) != (row.schedule, row.timezone):
                row.next_run_at = self._next_run(monitor, now)
            row.endpoint = monitor.endpoint
            row.spec = monitor.model_dump(mode="json")
            row.schedule = monitor.schedule
            row.timezone = monitor.timezone
            row.updated_at = now
            self.events.append(
                "monitor.updated",
                self._resource(f"monitor/{monitor.name}"),
                {
                    "monitor": monitor.name,
                    "kind": monitor.kind,
                    "endpoint": monitor.endpoint,
                    "by": actor,
                },
                session=session,
            )
            self.audit.changed(
                actor,
                "monitor.update",
                self._resource(f"monitor/{monitor.name}"),
                {"kind": monitor.kind, "endpoint": monitor.endpoint},
                session=session,
            )
            session.flush()
            return monitor_of(row)

    def _checked(self, spec: MonitorSpec | dict[str, Any]) -> MonitorSpec:
        """The spec parsed and checked against what it names, as :meth:`create` and
        :meth:`update` need it before either writes: its baseline exists and has the
        columns its drift overrides name, its bias facet and attribution reference fit,
        its skew monitor's feature view exists and has the features it names."""
        monitor = parse_spec(MonitorSpec, spec)
        if monitor.baseline is not None:
            with self.db.session() as session:
                if session.get(BaselineRow, (self.workspace, monitor.baseline)) is None:
                    raise InvalidInput(
                        f"baseline {monitor.baseline!r} does not exist", field="baseline"
                    )
            self._check_overrides(monitor)
        if monitor.bias is not None:
            with self.db.session() as session:
                bias_monitor.check_facet(session, self.baselines, monitor)
        if monitor.attribution is not None:
            with self.db.session() as session:
                attribution.check_reference(
                    session, self.workspace, monitor, self._registered_importance
                )
        if monitor.skew is not None:
            with self.db.session() as session:
                config = served.active_config(session, self.workspace, monitor.endpoint)
            skew_monitor.check(self.feature_views, monitor, config)
        return monitor

    def _check_baseline_kept(self, session: Any, monitor: MonitorSpec) -> None:
        """The baseline checked before the write is still there within it (deleting a
        baseline a monitor uses is refused, so once written it stays)."""
        if (
            monitor.baseline is not None
            and session.get(BaselineRow, (self.workspace, monitor.baseline)) is None
        ):
            raise InvalidInput(f"baseline {monitor.baseline!r} does not exist", field="baseline")

    @staticmethod
    def _next_run(monitor: MonitorSpec, now: datetime) -> datetime | None:
        """When a scheduled run of ``monitor`` is next due after ``now``; None without a
        schedule (on demand only)."""
        if monitor.schedule is None:
            return None
        return next_after(monitor.schedule, monitor.timezone, now)

    def _check_overrides(self, monitor: MonitorSpec) -> None:
        assert monitor.baseline is not None
        statistics = self.baselines.statistics(monitor.baseline)
        for column, rule in monitor.drift.items():
            profile = statistics.columns.get(column)
            if profile is None:
                raise InvalidInput(
                    f"the baseline has no column {column!r}", field=f"drift.{column}"
                )
            numeric = profile["type"] in ("int", "float")
            if (rule.method == "chi2_p_value" and numeric) or (
                rule.method.startswith("ks") and not numeric
            ):
                raise InvalidInput(
                    f"{rule.method} does not apply to a {profile['type']} column",
                    field=f"drift.{column}.method",
                )

    def _row(self, session: Any, name: str) -> MonitorRow:
        row = session.get(MonitorRow, (self.workspace, name))
        if row is None:
            raise NotFound(f"monitor {name!r} does not exist")
        return row  # type: ignore[no-any-return]

    def get(self, name: str) -> Monitor:
        with self.db.session() as session:
            return monitor_of(self._row(session, name))

    def list(self, *, endpoint: str | None = None) -> Listing[Monitor]:
        query = (
            select(MonitorRow)
            .where(MonitorRow.workspace == self.workspace)
            .order_by(MonitorRow.name)
        )
        if endpoint is not None:
            query = query.where(MonitorRow.endpoint == endpoint)
        with self.db.session() as session:
            return Listing(monitor_of(row) for row in session.scalars(query))

    def set_enabled(self, name: str, enabled: bool, *, actor: str) -> Monitor:
        with self.db.write() as session:
            row = self._row(session, name)
            row.enabled = enabled
            row.updated_at = utcnow()
            if enabled and row.schedule:
                row.next_run_at = next_after(row.schedule, row.timezone, utcnow())
            self.events.append(
                "monitor.enabled" if enabled else "monitor.disabled",
                self._resource(f"monitor/{name}"),
                {"monitor": name, "by": actor},
                session=session,
            )
            self.audit.changed(
                actor,
                "monitor.enable" if enabled else "monitor.disable",
                self._resource(f"monitor/{name}"),
                {"endpoint": row.endpoint},
                session=session,
            )
            return monitor_of(row)

    def delete(self, name: str, *, actor: str) -> None:
        with self.db.write() as session:
            row = self._row(session, name)
            session.delete(row)
            self.events.append(
                "monitor.deleted",
                self._resource(f"monitor/{name}"),
                {"monitor": name, "by": actor},
                session=session,
            )
            self.audit.changed(
                actor,
                "monitor.delete",
                self._resource(f"monitor/{name}"),
                {"endpoint": row.endpoint},
                session=session,
            )

    # -- runs --------------------------------------------------------------------------

    def run(
        self,
        name: str,
        *,
        actor: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> MonitorRun:
        """Queue a run over ``[start, end)`` (default: the monitor's window before now)."""
        with self.db.write() as session:
            row = self._row(session, name)
            end = end or utcnow()
            start = start or end - timedelta(hours=float(row.spec["window_hours"]))
            if start.tzinfo is None or end.tzinfo is None:
                raise InvalidInput("window times need a time zone", field="start")
            if start >= end:
                raise InvalidInput("the window must end after it starts", field="end")
            run = self._start(session, row, start, end, trigger="manual", actor=actor)
            self.audit.changed(
                actor,
                "monitor.run",
                self._resource(f"monitor/{name}"),
                {"run": run.id, "start": _iso(start), "end": _iso(end)},
                session=session,
            )
            return run_of(run)

    def _start(
        self,
        session: Any,
        monitor: MonitorRow,
        start: datetime,
        end: datetime,
        *,
        trigger: str,
        actor: str,
        scheduled_for: datetime | None = None,
    ) -> MonitorRunRow:
        run = MonitorRunRow(
            workspace=monitor.workspace,
            monitor=monitor.name,
            state="queued",
            status=None,
            trigger=trigger,
            scheduled_for=scheduled_for,
            window_start=start,
            window_end=end,
            rows=0,
            violations=0,
            summary={},
            report_key=None,
            error=None,
            work_item_id=None,
            created_by=actor,
            created_at=utcnow(),
        )
        session.add(run)
        session.flush()
        item = self.queue.enqueue(
            QUEUE, RUN_KIND, {"run": run.id}, max_attempts=3, backoff_seconds=2.0, session=session
        )
        run.work_item_id = item.id
        monitor.runs += 1
        return run

    def runs(self, name: str, *, limit: int = 100, offset: int = 0) -> Listing[MonitorRun]:
        """The monitor's runs, newest first; ``offset`` skips that many newest (a page of
        the console's run list)."""
        with self.db.session() as session:
            self._row(session, name)
            rows = session.scalars(
                select(MonitorRunRow)
                .where(MonitorRunRow.workspace == self.workspace, MonitorRunRow.monitor == name)
                .order_by(MonitorRunRow.id.desc())
                .offset(max(offset, 0))
                .limit(min(max(limit, 1), MAX_RUNS_LISTED))
            )
            return Listing(run_of(row) for row in rows)

    def count_runs(self, name: str) -> int:
        """How many runs the monitor has (its rows, unlike :attr:`Monitor.runs`, which
        counts the runs started since it was created: runs of a deleted monitor of the same
        name are listed too)."""
        with self.db.session() as session:
            self._row(session, name)
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(MonitorRunRow)
                    .where(MonitorRunRow.workspace == self.workspace, MonitorRunRow.monitor == name)
                )
                or 0
            )

    def latest_runs(self, *, completed: bool = False) -> dict[str, MonitorRun]:
        """The newest run of each monitor of the workspace that has one, by monitor name
        (with ``completed``, the newest completed run: whose violations are the ones still
        open). One query for a list of monitors, instead of one per monitor."""
        newest = select(func.max(MonitorRunRow.id)).where(MonitorRunRow.workspace == self.workspace)
        if completed:
            newest = newest.where(MonitorRunRow.state == "completed")
        newest = newest.group_by(MonitorRunRow.monitor)
        with self.db.session() as session:
            rows = session.scalars(select(MonitorRunRow).where(MonitorRunRow.id.in_(newest)))
            return {row.monitor: run_of(row) for row in rows}

    def get_run(self, run_id: int) -> MonitorRun:
        with self.db.session() as session:
            return run_of(self._run_row(session, run_id))

    def _run_row(self, session: Any, run_id: int) -> MonitorRunRow:
        """Run ``run_id`` of this workspace's monitors; another workspace's is not found."""
        row = session.get(MonitorRunRow, run_id)
        if row is None or row.workspace != self.workspace:
            raise NotFound(f"monitor run {run_id} does not exist")
        return row  # type: ignore[no-any-return]

    def report(self, run_id: int) -> MonitorReport:
        """A completed run's report; :class:`NotFound` until it has completed."""
        with self.db.session() as session:
            key = self._run_row(session, run_id).report_key
        if key is None:
            raise NotFound(f"monitor run {run_id} has no report (yet)")
        return MonitorReport.model_validate(orjson.loads(self.artifacts.get_bytes(key)))

    def tick(self, now: datetime | None = None) -> builtins.list[int]:
        """Start every due scheduled run; returns their ids."""
        now = now or utcnow()
        started: builtins.list[int] = []
        with self.db.write() as session:
            due = session.scalars(
                select(MonitorRow)
                .where(MonitorRow.enabled.is_(True), MonitorRow.next_run_at <= now)
                .with_for_update(skip_locked=True)
            ).all()
            for monitor in due:
                assert monitor.schedule is not None and monitor.next_run_at is not None
                # Missed ticks collapse into the latest: the newest fire time not after now.
                fire = monitor.next_run_at
                while (following := next_after(monitor.schedule, monitor.timezone, fire)) <= now:
                    fire = following
                monitor.next_run_at = next_after(monitor.schedule, monitor.timezone, now)
                taken = session.scalar(
                    select(MonitorRunRow.id).where(
                        MonitorRunRow.workspace == monitor.workspace,
                        MonitorRunRow.monitor == monitor.name,
                        MonitorRunRow.scheduled_for == fire,
                    )
                )
                if taken is not None:
                    continue
                window = timedelta(hours=float(monitor.spec["window_hours"]))
                try:
                    with session.begin_nested():
                        run = self._start(
                            session,
                            monitor,
                            fire - window,
                            fire,
                            trigger="schedule",
                            actor="scheduler",
                            scheduled_for=fire,
                        )
                except IntegrityError:
                    continue  # another scheduler started this tick's run first
                started.append(run.id)
        return started

    # -- ground truth ------------------------------------------------------------------

    def put_ground_truth(
        self, endpoint: str, records: Any, *, actor: str | None = None
    ) -> GroundTruthUpload:
        """Validate and store labels for captured predictions (all or nothing):
        ``records`` is a list of ``{inference_id, row, label}`` objects, or a table (a
        pandas DataFrame or an Arrow table) of those columns. Audited as
        ``ground_truth.upload`` once the file is stored."""
        validate_name(endpoint, field="endpoint")
        records = ground_truth.as_records(records)
        table = ground_truth.records_table(records)
        scoped = self._endpoint_key(endpoint)
        key = ground_truth.write(self.artifacts, scoped, table)
        self.events.append(
            "monitoring.ground_truth_received",
            endpoint_resource(scoped),
            {"endpoint": endpoint, "records": table.num_rows},
        )
        self.audit.changed(
            actor,
            "ground_truth.upload",
            endpoint_resource(scoped),
            {"records": table.num_rows, "key": key},
        )
        return GroundTruthUpload(endpoint=endpoint, records=table.num_rows, key=key)

    # -- A/B tests ---------------------------------------------------------------------

    def ab_test(
        self,
        endpoint: str,
        *,
        since: datetime,
        until: datetime | None = None,
        metric: str = "roc_auc",
        min_difference: float = 0.0,
        min_samples: int = 100,
        confidence: float = 0.95,
        resamples: int = 1000,
        seed: int = 0,
        reference: str | None = None,
    ) -> ABReport:
        """The A/B report of ``endpoint`` over ``[since, until)`` (``until`` default now):
        per-variant quality from ground truth beside its traffic, each variant against
        ``reference`` (default: the active config's heaviest variant) with a seeded
        bootstrap interval, and the rule's verdict (see :mod:`slipway.evaluation.ab`).
        InvalidInput names the bad argument (``until`` not after ``since``, an unknown
        metric...); NotFound for an unknown endpoint."""
        validate_name(endpoint, field="endpoint")
        rule = ab.Rule(metric, min_difference, min_samples, confidence, resamples, seed)
        return ab_test.run(self, endpoint, since=since, until=until, rule=rule, reference=reference)

    # -- execution ---------------------------------------------------------------------

    def execute(self, run_id: int) -> MonitorRun:
        """Run a queued run to its outcome (called by a worker). A failure is recorded as
        the run's outcome, not raised: running it again would fail the same way."""
        with self.db.write() as session:
            run = session.get(MonitorRunRow, run_id)
            if run is None:
                raise NotFound(f"monitor run {run_id} does not exist")
            if run.state in ("completed", "failed"):
                return run_of(run)
            monitor = session.get(MonitorRow, (run.workspace, run.monitor))
            if monitor is None:
                run.state, run.status, run.error = "failed", "failed", "the monitor was deleted"
                run.finished_at = utcnow()
                return run_of(run)
            run.state = "running"
            run.started_at = utcnow()
            spec = MonitorSpec.model_validate(monitor.spec)
            start, end = run.window_start, run.window_end
            own = self.in_workspace(run.workspace)  # its endpoint, baselines and models
        try:
            report = own._evaluate(spec, start, end)
        except Exception as exc:
            return own._finish_failed(run_id, spec, f"{type(exc).__name__}: {exc}")
        return own._finish(run_id, spec, report)

    def _evaluate(self, spec: MonitorSpec, start: datetime, end: datetime) -> dict[str, Any]:
        captured = capture.read_window(
            self.artifacts,
            self._endpoint_key(spec.endpoint),
            start,
            end,
            variant=spec.variant,
            include_shadow=spec.include_shadow,
            identity=spec.kind in ("model_quality", "bias", "feature_skew"),
            models=spec.kind == "attribution_drift",
        )
        if spec.skew is not None:
            return self._skew(spec, captured)
        if spec.attribution is not None:
            return attribution.evaluate(
                captured, spec.attribution, load=self._load, registered=self._registered_importance
            )
        if spec.kind == "data_quality":
            assert spec.baseline is not None
            statistics = self.baselines.document(spec.baseline, "statistics")
            constraints = self.baselines.document(spec.baseline, "constraints")
            for column, rule in spec.overrides().items():
                if column in constraints["columns"]:
                    constraints["columns"][column]["drift"] = rule
            if captured.num_rows == 0:
                return {
                    "kind": "data_quality",
                    "rows": 0,
                    "violations": [],
                    "drifted": [],
                    "columns": {},
                }
            report = data_quality.evaluate(statistics, constraints, captured)
            report["baseline"] = spec.baseline
            return report
        labels = ground_truth.read(self.artifacts, self._endpoint_key(spec.endpoint), start)
        if spec.bias is not None:
            return bias_monitor.evaluate(captured, labels, spec.bias)
        assert spec.model_quality is not None
        quality = spec.model_quality
        return model_quality.evaluate(
            captured,
            labels,
            quality.problem_type,
            positive_label=quality.positive_label,
            probability_threshold=quality.probability_threshold,
            thresholds={
                metric: bound.model_dump(exclude_none=True)
                for metric, bound in quality.thresholds.items()
            },
        )

    def _skew(self, spec: MonitorSpec, captured: Any) -> dict[str, Any]:
        """A feature-skew run: the view the monitor names (or the endpoint's enrichment
        pins now) recomputed as known at each captured row's time."""
        assert spec.skew is not None
        with self.db.session() as session:
            config = served.active_config(session, self.workspace, spec.endpoint)
        view = skew_monitor.resolve(self.feature_views, spec.skew, config, spec.endpoint)
        return skew_monitor.evaluate(
            captured,
            spec.skew,
            view,
            skew_monitor.as_known_at(self.feature_views),
            renamed=skew_monitor.renamed_keys(config),
        )

    def _load(self, name: str, version: int) -> LoadedModel:
        """A served version, as the gateway loads it (its digest verified)."""
        return load_model(self.registry, name, version)

    def _registered_importance(self, name: str, version: int) -> dict[str, float] | None:
        try:
            lineage = self.registry.get(name, version).lineage
        except NotFound:
            return None
        return attribution.registered_importance(lineage)

    def _finish(self, run_id: int, spec: MonitorSpec, report: dict[str, Any]) -> MonitorRun:
        violations = report["violations"]
        empty = report["rows"] == 0 or report.get("labelled") == 0
        status = "no_data" if empty else "violations" if violations else "no_violations"
        key = self._resource(f"{REPORTS}/{spec.name}/{run_id}.json")  # in its share
        with self.db.write() as session:
            run = session.get(MonitorRunRow, run_id, with_for_update=True)
            assert run is not None
            if run.state in ("completed", "failed"):
                # Finished by another worker (this one's lease expired and the run was
                # executed again): its report and events stand; raise nothing twice.
                return run_of(run)
            report |= {
                "monitor": spec.name,
                "endpoint": spec.endpoint,
                "run_id": run_id,
                "status": status,
                "window_start": _iso(run.window_start),
                "window_end": _iso(run.window_end),
            }
            self.artifacts.put_bytes(key, orjson.dumps(report, option=orjson.OPT_SERIALIZE_NUMPY))
            run.state, run.status, run.report_key = "completed", status, key
            run.rows = int(report["rows"])
            run.violations = len(violations)
            run.summary = _summary(report)
            run.finished_at = utcnow()
            monitor = session.get(MonitorRow, (self.workspace, spec.name))
            if monitor is not None:
                monitor.last_status = status
            payload = {
                "monitor": spec.name,
                "kind": spec.kind,
                "endpoint": spec.endpoint,
                "run_id": run_id,
                "status": status,
                "violations": len(violations),
                "window_start": _iso(run.window_start),
                "window_end": _iso(run.window_end),
            }
            resource = self._resource(f"monitor/{spec.name}")
            self.events.append("monitor.run_completed", resource, payload, session=session)
            if violations:
                checks = sorted({v["check"] for v in violations})
                self.events.append(
                    "monitor.violations",
                    resource,
                    payload | {"checks": checks, "drifted": report.get("drifted", [])},
                    session=session,
                )
            return run_of(run)

    def _finish_failed(self, run_id: int, spec: MonitorSpec, error: str) -> MonitorRun:
        with self.db.write() as session:
            run = session.get(MonitorRunRow, run_id, with_for_update=True)
            assert run is not None
            if run.state in ("completed", "failed"):
                return run_of(run)
            run.state, run.status, run.error = "failed", "failed", error[:4000]
            run.finished_at = utcnow()
            monitor = session.get(MonitorRow, (self.workspace, spec.name))
            if monitor is not None:
                monitor.last_status = "failed"
            self.events.append(
                "monitor.run_failed",
                self._resource(f"monitor/{spec.name}"),
                {
                    "monitor": spec.name,
                    "endpoint": spec.endpoint,
                    "run_id": run_id,
                    "error": error[:500],
                },
                session=session,
            )
            return run_of(run)


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a run list shows without opening the report."""
    checks: dict[str, int] = {}
    for violation in report["violations"]:
        checks[violation["check"]] = checks.get(violation["check"], 0) + 1
    summary: dict[str, Any] = {"checks": checks}
    if report["kind"] == "data_quality":
        summary["drifted"] = report.get("drifted", [])
        summary["drift"] = {
            name: {
                "method": entry["drift"]["rule"]["method"],
                "score": entry["drift"][entry["drift"]["rule"]["method"]],
                "psi": entry["drift"].get("psi"),
            }
            for name, entry in report.get("columns", {}).items()
            if "drift" in entry and "rule" in entry["drift"]
        }
    elif report["kind"] == "attribution_drift":
        summary["metrics"] = report.get("metrics", {})
        summary["ndcg"] = {m["model"]: m["ndcg"] for m in report.get("models", [])}
    elif report["kind"] == "feature_skew":
        summary["metrics"] = report.get("metrics", {})  # feature -> share of mismatches
        summary["compared"] = report.get("compared", 0)
        summary["skewed"] = report.get("skewed", [])
    else:
        summary["metrics"] = report.get("metrics", {})
        summary["labelled"] = report.get("labelled", 0)
    return summary
