"""pipelines, their executions, schedules (and their firings) and triggers belong to a
workspace; names unique per workspace

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_KEYS = {
    "slipway_pipelines": ["name"],
    "slipway_schedules": ["name"],
    "slipway_schedule_fires": ["schedule", "fire_time"],
    "slipway_triggers": ["name"],
}
_EXECUTIONS = "slipway_executions"


def _workspace() -> sa.Column:  # type: ignore[type-arg]
    # Everything before workspaces was the one team's: the default's.
    return sa.Column("workspace", sa.String(length=63), nullable=False, server_default="default")


def upgrade() -> None:
    for table, key in _KEYS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.add_column(_workspace())
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["workspace", *key])
    with op.batch_alter_table(_EXECUTIONS) as batch:
        batch.add_column(_workspace())
        batch.create_index("ix_slipway_executions_workspace", ["workspace"])


def downgrade() -> None:
    op.execute(f"DELETE FROM {_EXECUTIONS} WHERE workspace <> 'default'")
    with op.batch_alter_table(_EXECUTIONS) as batch:
        batch.drop_index("ix_slipway_executions_workspace")
        batch.drop_column("workspace")
    for table, key in _KEYS.items():
        op.execute(f"DELETE FROM {table} WHERE workspace <> 'default'")
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("workspace")
            batch.create_primary_key(f"pk_{table}", key)
