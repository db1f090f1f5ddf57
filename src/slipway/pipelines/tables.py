"""The pipelines capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base


class PipelineRow(Base):
    """A registered pipeline: where its code lives and its graph at registration."""

    __tablename__ = "slipway_pipelines"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    target: Mapped[str] = mapped_column(String(512))
    graph: Mapped[dict[str, Any]]
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Made through the API: the built-in job steps confine what it gives them.
    confined: Mapped[bool] = mapped_column(default=False)


class ExecutionRow(Base):
    """One run of a pipeline, with the graph and parameters it ran with."""

    __tablename__ = "slipway_executions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(63), index=True, default="default")
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
    # Made through the API: the built-in job steps confine what it gives them.
    confined: Mapped[bool] = mapped_column(default=False)


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


class ScheduleRow(Base):
    """A cron schedule that starts a pipeline; ``next_fire_at`` is persisted."""

    __tablename__ = "slipway_schedules"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
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
    # Made through the API: the built-in job steps confine what it gives them.
    confined: Mapped[bool] = mapped_column(default=False)


class ScheduleFireRow(Base):
    """One firing of a schedule; the key makes each tick fire at most once."""

    __tablename__ = "slipway_schedule_fires"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
    schedule: Mapped[str] = mapped_column(String(63), primary_key=True)
    fire_time: Mapped[datetime] = mapped_column(primary_key=True)
    execution_id: Mapped[str] = mapped_column(String(32))
    fired_at: Mapped[datetime]
