"""Feature views' table: every version of every view, immutable once written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base


class FeatureViewRow(Base):
    """One version of a feature view. A changed definition is a new version; old ones stay,
    since a model version is bound to the view version it was trained on."""

    __tablename__ = "slipway_feature_views"

    # Names are unique per workspace (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict[str, Any]]
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
