"""api tokens: expiry

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import slipway.core.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: every existing token keeps never expiring.
    with op.batch_alter_table("slipway_api_tokens") as batch:
        batch.add_column(
            sa.Column(
                "expires_at",
                slipway.core.db.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("slipway_api_tokens") as batch:
        batch.drop_column("expires_at")
