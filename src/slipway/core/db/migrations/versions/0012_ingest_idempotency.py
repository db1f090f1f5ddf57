"""feature ingests: idempotency key and heartbeat

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 03:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import slipway.core.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slipway_feature_ingests") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch.add_column(
            sa.Column(
                "heartbeat_at",
                slipway.core.db.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    op.create_index(
        "uq_slipway_feature_ingests_group_name_idempotency_key",
        "slipway_feature_ingests",
        ["group_name", "idempotency_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(
        "uq_slipway_feature_ingests_group_name_idempotency_key",
        table_name="slipway_feature_ingests",
    )
    with op.batch_alter_table("slipway_feature_ingests") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("idempotency_key")
