"""The training capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base


class TrainingJobRow(Base):
    """A training job: its spec, state, MLflow run and where its model landed."""

    __tablename__ = "slipway_training_jobs"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
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
