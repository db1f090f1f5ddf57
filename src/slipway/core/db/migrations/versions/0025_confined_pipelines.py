"""whether a pipeline, execution, schedule or trigger came through the API: the built-in
job steps confine what such a one gives them as the API confines a caller

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_TABLES = ("slipway_pipelines", "slipway_executions", "slipway_schedules", "slipway_triggers")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            # Everything before was made in process (or is treated so): not confined.
            batch.add_column(
                sa.Column("confined", sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("confined")
