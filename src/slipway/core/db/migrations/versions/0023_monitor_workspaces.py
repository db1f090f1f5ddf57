"""monitors, their runs and baselines belong to a workspace; names unique per workspace

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 08:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_KEYS = {"slipway_baselines": ["name"], "slipway_monitors": ["name"]}
_RUNS = "slipway_monitor_runs"


def _workspace() -> sa.Column:  # type: ignore[type-arg]
    # Everything before workspaces was the one team's: the default's.
    return sa.Column("workspace", sa.String(length=63), nullable=False, server_default="default")


def upgrade() -> None:
    for table, key in _KEYS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.add_column(_workspace())
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["workspace", *key])
    with op.batch_alter_table(_RUNS, recreate="always") as batch:
        batch.add_column(_workspace())
        batch.drop_index("uq_slipway_monitor_runs_monitor_scheduled_for")
        batch.drop_index("ix_slipway_monitor_runs_monitor_id")
        batch.create_index(
            "uq_slipway_monitor_runs_monitor_scheduled_for",
            ["workspace", "monitor", "scheduled_for"],
            unique=True,
        )
        batch.create_index("ix_slipway_monitor_runs_monitor_id", ["workspace", "monitor", "id"])


def downgrade() -> None:
    with op.batch_alter_table(_RUNS, recreate="always") as batch:
        batch.drop_index("uq_slipway_monitor_runs_monitor_scheduled_for")
        batch.drop_index("ix_slipway_monitor_runs_monitor_id")
    op.execute(f"DELETE FROM {_RUNS} WHERE workspace <> 'default'")
    with op.batch_alter_table(_RUNS, recreate="always") as batch:
        batch.drop_column("workspace")
        batch.create_index(
            "uq_slipway_monitor_runs_monitor_scheduled_for",
            ["monitor", "scheduled_for"],
            unique=True,
        )
        batch.create_index("ix_slipway_monitor_runs_monitor_id", ["monitor", "id"])
    for table, key in _KEYS.items():
        op.execute(f"DELETE FROM {table} WHERE workspace <> 'default'")
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("workspace")
            batch.create_primary_key(f"pk_{table}", key)
