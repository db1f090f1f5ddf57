"""Slipway's own tables in the metadata database.

Every table is prefixed ``slipway_`` and the Alembic version table is
``slipway_alembic_version``, so the same database can also hold MLflow's tables.
Capabilities add their tables here as they land, each with a migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from slipway.core.db.types import BigIntPK, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base bound to Slipway's metadata and naming convention."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class WorkItemRow(Base):
    """One unit of queued work: a step, job, trial, batch chunk or monitor run."""

    __tablename__ = "slipway_work_items"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(127))
    payload: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    backoff_seconds: Mapped[float] = mapped_column(default=1.0)
    available_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_slipway_work_items_claim", "queue", "state", "priority", "available_at"),
    )


class EventRow(Base):
    """One event in the outbox; ``id`` is the total order subscribers read in."""

    __tablename__ = "slipway_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(127), index=True)
    resource: Mapped[str] = mapped_column(String(255), index=True)
    payload: Mapped[dict[str, Any]]
    time: Mapped[datetime]


class EventCursorRow(Base):
    """How far a named subscriber has read the outbox."""

    __tablename__ = "slipway_event_cursors"

    subscriber: Mapped[str] = mapped_column(String(127), primary_key=True)
    position: Mapped[int] = mapped_column(BigIntPK, default=0)
    updated_at: Mapped[datetime]


class ApiTokenRow(Base):
    """An API token; only the SHA-256 of its secret is stored."""

    __tablename__ = "slipway_api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuditRow(Base):
    """One mutation: who did what to which resource, when, and how it ended."""

    __tablename__ = "slipway_audit"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(1024))
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    details: Mapped[dict[str, Any]]


class FeatureGroupRow(Base):
    """A feature group's definition (the JSON of ``FeatureGroup``) and its revision."""

    __tablename__ = "slipway_feature_groups"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FeatureIngestRow(Base):
    """One ingestion (or materialization) into a feature group, with its statistics."""

    __tablename__ = "slipway_feature_ingests"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(BigIntPK, default=0)
    offline_version: Mapped[int | None]
    online_applied: Mapped[int | None]
    stats: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # A client's key for one batch: a retry with the same key resumes or replays this
    # ingestion instead of writing the batch twice (see slipway.features.ingest).
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # Renewed while an attempt runs; a stale one means its process died.
    heartbeat_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_slipway_feature_ingests_group_name_idempotency_key",
            "group_name",
            "idempotency_key",
            unique=True,
        ),
    )


class ModelVersionRow(Base):
    """Slipway's record of a registered model version: approval, digest, lineage."""

    __tablename__ = "slipway_model_versions"

    model_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(2048))
    artifact_key: Mapped[str] = mapped_column(String(2048))
    approval_status: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    signature: Mapped[dict[str, Any]]
    lineage: Mapped[dict[str, Any]]
    description: Mapped[str] = mapped_column(Text, default="")
    registered_by: Mapped[str] = mapped_column(String(255))
    registered_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApprovalTransitionRow(Base):
    """One change of a model version's approval status: who, when, why."""

    __tablename__ = "slipway_approval_transitions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[datetime]

    __table_args__ = (Index("ix_slipway_approval_transitions_version", "model_name", "version"),)


class ModelInputRow(Base):
    """Reverse lineage: which feature group (at which Delta version) trained a version."""

    __tablename__ = "slipway_model_inputs"

    model_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_group: Mapped[str] = mapped_column(String(63), primary_key=True, index=True)
    delta_version: Mapped[int | None]


class PipelineRow(Base):
    """A registered pipeline: where its code lives and its graph at registration."""

    __tablename__ = "slipway_pipelines"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    target: Mapped[str] = mapped_column(String(512))
    graph: Mapped[dict[str, Any]]
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ExecutionRow(Base):
    """One run of a pipeline, with the graph and parameters it ran with."""

    __tablename__ = "slipway_executions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(63), index=True)
    target: Mapped[str] = mapped_column(String(512))
    graph: Mapped[dict[str, Any]]
    parameters: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    trigger: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class StepRunRow(Base):
    """The state of one step of one execution."""

    __tablename__ = "slipway_step_runs"

    execution_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    step: Mapped[str] = mapped_column(String(63), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    work_item_id: Mapped[int | None]
    cache_key: Mapped[str | None] = mapped_column(String(64), index=True)
    cached_from: Mapped[str | None] = mapped_column(String(32))
    outputs: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class StepLogRow(Base):
    """A chunk of a step's captured stdout/stderr, in order."""

    __tablename__ = "slipway_step_logs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # An execution id, or ``job/<name>`` for a training job's log.
    execution_id: Mapped[str] = mapped_column(String(80))
    step: Mapped[str] = mapped_column(String(63))
    attempt: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime]

    __table_args__ = (Index("ix_slipway_step_logs_step", "execution_id", "step", "id"),)


class TrainingJobRow(Base):
    """A training job: its spec, state, MLflow run and where its model landed."""

    __tablename__ = "slipway_training_jobs"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    work_item_id: Mapped[int | None]
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    model_key: Mapped[str | None] = mapped_column(String(1024))
    output_key: Mapped[str | None] = mapped_column(String(1024))
    resumed_from_checkpoint: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class TuningJobRow(Base):
    """A hyperparameter tuning job: its spec, Optuna study, parent MLflow run and result."""

    __tablename__ = "slipway_tuning_jobs"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    best: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class ScheduleRow(Base):
    """A cron schedule that starts a pipeline; ``next_fire_at`` is persisted."""

    __tablename__ = "slipway_schedules"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(63))
    cron: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]]
    catchup: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool]
    next_fire_at: Mapped[datetime] = mapped_column(index=True)
    last_fired_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ScheduleFireRow(Base):
    """One firing of a schedule; the key makes each tick fire at most once."""

    __tablename__ = "slipway_schedule_fires"

    schedule: Mapped[str] = mapped_column(String(63), primary_key=True)
    fire_time: Mapped[datetime] = mapped_column(primary_key=True)
    execution_id: Mapped[str] = mapped_column(String(32))
    fired_at: Mapped[datetime]


class TriggerRow(Base):
    """Start a pipeline when a matching event arrives, at most once per debounce window."""

    __tablename__ = "slipway_triggers"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(63))
    event_type: Mapped[str] = mapped_column(String(127), index=True)
    filters: Mapped[dict[str, Any]]
    parameter_mapping: Mapped[dict[str, Any]]
    debounce_seconds: Mapped[float]
    enabled: Mapped[bool]
    last_fired_at: Mapped[datetime | None]
    fired: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class EndpointRow(Base):
    """A serving endpoint and where its rollout stands.

    ``active_version`` is the config serving the traffic; during a deployment
    ``target_version`` gets ``target_percent`` of it. Every change bumps ``generation``,
    which is what gateways poll to know they must reload.
    """

    __tablename__ = "slipway_endpoints"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    active_version: Mapped[int | None] = mapped_column(Integer)
    target_version: Mapped[int | None] = mapped_column(Integer)
    target_percent: Mapped[float] = mapped_column(default=0.0)
    phase: Mapped[int] = mapped_column(Integer, default=0)
    phase_started_at: Mapped[datetime | None]
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EndpointConfigRow(Base):
    """One immutable config of an endpoint; together they are its deployment history."""

    __tablename__ = "slipway_endpoint_configs"

    endpoint: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict[str, Any]]
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_reason: Mapped[str] = mapped_column(Text, default="")
    rollback_of: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class GatewayRow(Base):
    """A live gateway worker process: its heartbeat and when it last applied configs."""

    __tablename__ = "slipway_gateways"

    gateway_id: Mapped[str] = mapped_column(String(127), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime] = mapped_column(index=True)
    refreshed_at: Mapped[datetime]
    in_flight: Mapped[int] = mapped_column(Integer, default=0)


class GatewayModelRow(Base):
    """Whether a gateway worker has the models of an endpoint config loaded."""

    __tablename__ = "slipway_gateway_models"

    gateway_id: Mapped[str] = mapped_column(String(127), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(63), primary_key=True)
    config_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]


class ServingStatsRow(Base):
    """Traffic counters of one variant of one config, per gateway worker and 5-second
    window: what ``/metrics`` sums and what deployment alarms evaluate."""

    __tablename__ = "slipway_serving_stats"

    endpoint: Mapped[str] = mapped_column(String(63), primary_key=True)
    config_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant: Mapped[str] = mapped_column(String(63), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(127), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms_sum: Mapped[float] = mapped_column(default=0.0)
    model_ms_sum: Mapped[float] = mapped_column(default=0.0)
    histogram: Mapped[dict[str, Any]]
    prediction_sum: Mapped[float] = mapped_column(default=0.0)
    prediction_count: Mapped[int] = mapped_column(Integer, default=0)
    captured: Mapped[int] = mapped_column(Integer, default=0)
    capture_dropped: Mapped[int] = mapped_column(Integer, default=0)
    cold_starts: Mapped[int] = mapped_column(Integer, default=0)
    cold_start_ms_sum: Mapped[float] = mapped_column(default=0.0)


class BatchJobRow(Base):
    """A batch transform job: its spec, pinned model, progress and manifest."""

    __tablename__ = "slipway_batch_jobs"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    model_name: Mapped[str] = mapped_column(String(63))
    model_version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    manifest: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class BatchChunkRow(Base):
    """One chunk of a batch job: what it reads, and whether its output is complete."""

    __tablename__ = "slipway_batch_chunks"

    job: Mapped[str] = mapped_column(String(63), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(default=0.0)
    work_item_id: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]


class BaselineRow(Base):
    """Baseline statistics and suggested constraints for a model's inputs and outputs.

    The documents themselves (``statistics.json``, ``constraints.json``) live in the
    artifact store under ``monitoring/baselines/<name>/``; the row says where they came
    from and which model version they describe.
    """

    __tablename__ = "slipway_baselines"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    model_name: Mapped[str | None] = mapped_column(String(63), index=True)
    model_version: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[dict[str, Any]]
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class MonitorRow(Base):
    """A data-quality or model-quality monitor over one endpoint's captured traffic."""

    __tablename__ = "slipway_monitors"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(String(63), index=True)
    spec: Mapped[dict[str, Any]]
    schedule: Mapped[str | None] = mapped_column(String(127))
    timezone: Mapped[str] = mapped_column(String(63))
    enabled: Mapped[bool]
    next_run_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(16))
    runs: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MonitorRunRow(Base):
    """One run of a monitor over a time window: its state, outcome and report.

    ``scheduled_for`` is set for scheduled runs and unique per monitor, so a schedule tick
    starts a run once however many schedulers race for it.
    """

    __tablename__ = "slipway_monitor_runs"
    __table_args__ = (
        Index(
            "uq_slipway_monitor_runs_monitor_scheduled_for", "monitor", "scheduled_for", unique=True
        ),
        Index("ix_slipway_monitor_runs_monitor_id", "monitor", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    monitor: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    scheduled_for: Mapped[datetime | None]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    rows: Mapped[int] = mapped_column(Integer, default=0)
    violations: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any]]
    report_key: Mapped[str | None] = mapped_column(String(1024))
    error: Mapped[str | None] = mapped_column(Text)
    work_item_id: Mapped[int | None]
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class AlertChannelRow(Base):
    """Where alerts go: a webhook, e-mail recipients or the log.

    ``config`` holds no secret of the platform's: the SMTP server and its password come
    from the settings, never from a channel.
    """

    __tablename__ = "slipway_alert_channels"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertRuleRow(Base):
    """Which events raise an alert, to which channels, with what cool-down.

    ``after_event`` is the newest event id when the rule was created: older events never
    fire it, so a new rule does not replay history.
    """

    __tablename__ = "slipway_alert_rules"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    filters: Mapped[dict[str, Any]]
    channels: Mapped[list[str]] = mapped_column(JSON)
    cooldown_seconds: Mapped[float]
    dedup_by: Mapped[list[str]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool]
    after_event: Mapped[int] = mapped_column(BigIntPK, default=0)
    fired: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    last_fired_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertRow(Base):
    """One fired alert: the rule, the event that raised it and its de-duplication key.

    ``suppressed`` counts the later events of the same rule and key absorbed by the
    cool-down; ``suppressed_before`` is what the previous alert of that key absorbed, which
    this alert's notification reports.
    """

    __tablename__ = "slipway_alerts"
    __table_args__ = (
        Index("uq_slipway_alerts_rule_event_id", "rule", "event_id", unique=True),
        Index("ix_slipway_alerts_rule_dedup_key_id", "rule", "dedup_key", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(63))
    severity: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int] = mapped_column(BigIntPK)
    event_type: Mapped[str] = mapped_column(String(127))
    resource: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]]
    dedup_key: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime]
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_before: Mapped[int] = mapped_column(Integer, default=0)
    last_suppressed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class AlertDeliveryRow(Base):
    """One alert to one channel: pending until delivered, or failed after its attempts.

    ``history`` records every attempt (time, outcome, status code, error); a pending
    delivery is claimed by pushing ``next_attempt_at`` past the attempt's time limit.
    """

    __tablename__ = "slipway_alert_deliveries"
    __table_args__ = (
        Index("ix_slipway_alert_deliveries_due", "state", "next_attempt_at"),
        Index("ix_slipway_alert_deliveries_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigIntPK)
    channel: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
