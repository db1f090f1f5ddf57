"""The tuning capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base


class TuningJobRow(Base):
    """A hyperparameter tuning job: its spec, Optuna study, parent MLflow run and result."""

    __tablename__ = "slipway_tuning_jobs"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    best: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
