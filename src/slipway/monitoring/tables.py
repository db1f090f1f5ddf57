"""The monitoring capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base
from slipway.core.db.types import BigIntPK


class BaselineRow(Base):
    """Baseline statistics and suggested constraints for a model's inputs and outputs.

    The documents themselves (``statistics.json``, ``constraints.json``) live in the
    artifact store under ``monitoring/baselines/<name>/``; the row says where they came
    from and which model version they describe.
    """

    __tablename__ = "slipway_baselines"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
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

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
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
            "uq_slipway_monitor_runs_monitor_scheduled_for",
            "workspace",
            "monitor",
            "scheduled_for",
            unique=True,
        ),
        Index("ix_slipway_monitor_runs_monitor_id", "workspace", "monitor", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(63), default="default")  # its monitor's
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
