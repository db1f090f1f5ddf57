"""The apply capability's table: which spec set owns which resource, and what it applied."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base


class AppliedRow(Base):
    """One resource ``slipway apply`` made or changed: its owner (the spec set) and the
    digest of the spec it applied last. Resources made by hand have no row, so ``--prune``
    can never reach them; a live resource that differs from the digest's spec was changed
    outside apply (drift)."""

    __tablename__ = "slipway_applied"

    # Names are unique per workspace and kind (slipway.core.workspace).
    workspace: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(31), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec_set: Mapped[str] = mapped_column(String(63))
    digest: Mapped[str] = mapped_column(String(64))
    applied_by: Mapped[str] = mapped_column(String(255))
    applied_at: Mapped[datetime]

    __table_args__ = (Index("ix_slipway_applied_spec_set", "workspace", "spec_set"),)
