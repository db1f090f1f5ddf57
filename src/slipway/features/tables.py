"""The features capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base
from slipway.core.db.types import BigIntPK


class FeatureGroupRow(Base):
    """A feature group's definition (the JSON of ``FeatureGroup``) and its revision."""

    __tablename__ = "slipway_feature_groups"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FeatureIngestRow(Base):
    """One ingestion (or materialization) into a feature group, with its statistics."""

    __tablename__ = "slipway_feature_ingests"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(63), default="default")
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
            "uq_slipway_feature_ingests_workspace_group_name_idempotency_key",
            "workspace",
            "group_name",
            "idempotency_key",
            unique=True,
        ),
    )
