"""batch jobs and their chunks belong to a workspace; names unique per workspace

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 05:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_KEYS = {
    "slipway_batch_jobs": ["name"],
    "slipway_batch_chunks": ["job", "index"],
}


def upgrade() -> None:
    for table, key in _KEYS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            # Every job before workspaces was the one team's: the default's.
            batch.add_column(
                sa.Column(
                    "workspace", sa.String(length=63), nullable=False, server_default="default"
                )
            )
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["workspace", *key])


def downgrade() -> None:
    for table, key in _KEYS.items():
        op.execute(f"DELETE FROM {table} WHERE workspace <> 'default'")
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("workspace")
            batch.create_primary_key(f"pk_{table}", key)
