"""a workspace's own model format policy (null: the platform's)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 05:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slipway_workspaces") as batch:
        batch.add_column(sa.Column("model_formats", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slipway_workspaces") as batch:
        batch.drop_column("model_formats")
