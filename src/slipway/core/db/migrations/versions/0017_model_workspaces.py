"""model versions, their approval history and their inputs belong to a workspace

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_TRANSITIONS_INDEX = "ix_slipway_approval_transitions_version"


def _workspace() -> sa.Column[str]:
    # Every version before workspaces was the one team's: the default's.
    return sa.Column("workspace", sa.String(length=63), nullable=False, server_default="default")


def upgrade() -> None:
    with op.batch_alter_table("slipway_model_versions", recreate="always") as batch:
        batch.add_column(_workspace())
        batch.drop_constraint("pk_slipway_model_versions", type_="primary")
        batch.create_primary_key(
            "pk_slipway_model_versions", ["workspace", "model_name", "version"]
        )
    with op.batch_alter_table("slipway_model_inputs", recreate="always") as batch:
        batch.add_column(_workspace())
        batch.drop_constraint("pk_slipway_model_inputs", type_="primary")
        batch.create_primary_key(
            "pk_slipway_model_inputs", ["workspace", "model_name", "version", "feature_group"]
        )
    op.drop_index(_TRANSITIONS_INDEX, table_name="slipway_approval_transitions")
    with op.batch_alter_table("slipway_approval_transitions") as batch:
        batch.add_column(_workspace())
    op.create_index(
        _TRANSITIONS_INDEX,
        "slipway_approval_transitions",
        ["workspace", "model_name", "version"],
    )


def downgrade() -> None:
    op.drop_index(_TRANSITIONS_INDEX, table_name="slipway_approval_transitions")
    op.execute("DELETE FROM slipway_approval_transitions WHERE workspace <> 'default'")
    with op.batch_alter_table("slipway_approval_transitions") as batch:
        batch.drop_column("workspace")
    op.create_index(_TRANSITIONS_INDEX, "slipway_approval_transitions", ["model_name", "version"])
    for table, key in (
        ("slipway_model_inputs", ["model_name", "version", "feature_group"]),
        ("slipway_model_versions", ["model_name", "version"]),
    ):
        op.execute(f"DELETE FROM {table} WHERE workspace <> 'default'")
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("workspace")
            batch.create_primary_key(f"pk_{table}", key)
