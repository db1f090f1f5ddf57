"""feature groups and their ingestions belong to a workspace; names unique per workspace

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 02:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_IDEMPOTENCY = "uq_slipway_feature_ingests_group_name_idempotency_key"
_SCOPED_IDEMPOTENCY = "uq_slipway_feature_ingests_workspace_group_name_idempotency_key"


def _workspace() -> sa.Column[str]:
    # Every group and ingestion before workspaces was the one team's: the default's.
    return sa.Column("workspace", sa.String(length=63), nullable=False, server_default="default")


def upgrade() -> None:
    with op.batch_alter_table("slipway_feature_groups", recreate="always") as batch:
        batch.add_column(_workspace())
        batch.drop_constraint("pk_slipway_feature_groups", type_="primary")
        batch.create_primary_key("pk_slipway_feature_groups", ["workspace", "name"])
    op.drop_index(_IDEMPOTENCY, table_name="slipway_feature_ingests")
    with op.batch_alter_table("slipway_feature_ingests") as batch:
        batch.add_column(_workspace())
    op.create_index(
        _SCOPED_IDEMPOTENCY,
        "slipway_feature_ingests",
        ["workspace", "group_name", "idempotency_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(_SCOPED_IDEMPOTENCY, table_name="slipway_feature_ingests")
    op.execute("DELETE FROM slipway_feature_ingests WHERE workspace <> 'default'")
    with op.batch_alter_table("slipway_feature_ingests") as batch:
        batch.drop_column("workspace")
    op.create_index(
        _IDEMPOTENCY, "slipway_feature_ingests", ["group_name", "idempotency_key"], unique=True
    )
    op.execute("DELETE FROM slipway_feature_groups WHERE workspace <> 'default'")
    with op.batch_alter_table("slipway_feature_groups", recreate="always") as batch:
        batch.drop_constraint("pk_slipway_feature_groups", type_="primary")
        batch.drop_column("workspace")
        batch.create_primary_key("pk_slipway_feature_groups", ["name"])
