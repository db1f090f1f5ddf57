"""alert channels, rules and fired alerts belong to a workspace; names unique per workspace

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 05:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_NAMED = ("slipway_alert_channels", "slipway_alert_rules")
_BY_EVENT = "uq_slipway_alerts_rule_event_id"
_BY_KEY = "ix_slipway_alerts_rule_dedup_key_id"


def _workspace() -> sa.Column[str]:
    # Every channel, rule and alert before workspaces was the one team's: the default's.
    return sa.Column("workspace", sa.String(length=63), nullable=False, server_default="default")


def upgrade() -> None:
    for table in _NAMED:
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.add_column(_workspace())
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["workspace", "name"])
    with op.batch_alter_table("slipway_alerts") as batch:
        batch.drop_index(_BY_EVENT)
        batch.drop_index(_BY_KEY)
        batch.add_column(_workspace())
        batch.create_index(_BY_EVENT, ["workspace", "rule", "event_id"], unique=True)
        batch.create_index(_BY_KEY, ["workspace", "rule", "dedup_key", "id"], unique=False)


def downgrade() -> None:
    op.execute(
        "DELETE FROM slipway_alert_deliveries WHERE alert_id IN"
        " (SELECT id FROM slipway_alerts WHERE workspace <> 'default')"
    )
    op.execute("DELETE FROM slipway_alerts WHERE workspace <> 'default'")
    with op.batch_alter_table("slipway_alerts") as batch:
        batch.drop_index(_BY_EVENT)
        batch.drop_index(_BY_KEY)
        batch.drop_column("workspace")
        batch.create_index(_BY_EVENT, ["rule", "event_id"], unique=True)
        batch.create_index(_BY_KEY, ["rule", "dedup_key", "id"], unique=False)
    for table in _NAMED:
        op.execute(f"DELETE FROM {table} WHERE workspace <> 'default'")
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("workspace")
            batch.create_primary_key(f"pk_{table}", ["name"])
