"""which spec set owns which resource (slipway apply's ownership records)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from slipway.core.db.types import UTCDateTime

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slipway_applied",
        sa.Column("workspace", sa.String(63), primary_key=True),
        sa.Column("kind", sa.String(31), primary_key=True),
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("spec_set", sa.String(63), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("applied_by", sa.String(255), nullable=False),
        sa.Column("applied_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_slipway_applied_spec_set", "slipway_applied", ["workspace", "spec_set"])


def downgrade() -> None:
    op.drop_index("ix_slipway_applied_spec_set", table_name="slipway_applied")
    op.drop_table("slipway_applied")
