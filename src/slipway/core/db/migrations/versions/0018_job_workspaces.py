"""training and tuning jobs belong to a workspace; names unique per workspace

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 05:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


_TABLES = ("slipway_training_jobs", "slipway_tuning_jobs")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, recreate="always") as batch:
            # Every job before workspaces was the one team's: the default's.
            batch.add_column(
                sa.Column(
                    "workspace", sa.String(length=63), nullable=False, server_default="default"
                )
            )
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["workspace", "name"])


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DELETE FROM {table} WHERE workspace <> 'default'")
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("workspace")
            batch.create_primary_key(f"pk_{table}", ["name"])
