"""workspaces, and the workspaces each token's role holds in

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 02:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import slipway.core.db.types
from slipway.core.clock import utcnow

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    workspaces = op.create_table(
        "slipway_workspaces",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("created_at", slipway.core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_slipway_workspaces")),
    )
    op.bulk_insert(
        workspaces,
        [
            {
                "name": "default",
                "description": "the platform's first workspace",
                "created_at": utcnow(),
                "created_by": "slipway",
            }
        ],
    )
    # Every token held its role over the one team there was: the default workspace, and
    # for admins the platform itself (tokens and settings), which is every workspace.
    with op.batch_alter_table("slipway_api_tokens") as batch:
        batch.add_column(
            sa.Column("workspaces", sa.JSON(), nullable=False, server_default='["default"]')
        )
    op.execute("UPDATE slipway_api_tokens SET workspaces = '[\"*\"]' WHERE role = 'admin'")


def downgrade() -> None:
    with op.batch_alter_table("slipway_api_tokens") as batch:
        batch.drop_column("workspaces")
    op.drop_table("slipway_workspaces")
