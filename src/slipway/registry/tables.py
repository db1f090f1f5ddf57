"""The registry capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base
from slipway.core.db.types import BigIntPK


class ModelVersionRow(Base):
    """Slipway's record of a registered model version: approval, digest, lineage."""

    __tablename__ = "slipway_model_versions"

    # Names are unique per workspace (slipway.core.workspace), as in MLflow's registry.
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
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
    workspace: Mapped[str] = mapped_column(String(63), default="default")
    model_name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[datetime]

    __table_args__ = (
        Index("ix_slipway_approval_transitions_version", "workspace", "model_name", "version"),
    )


class ModelInputRow(Base):
    """Reverse lineage: which feature group (at which Delta version) trained a version."""

    __tablename__ = "slipway_model_inputs"

    workspace: Mapped[str] = mapped_column(String(63), primary_key=True, default="default")
    model_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_group: Mapped[str] = mapped_column(String(63), primary_key=True, index=True)
    delta_version: Mapped[int | None]
