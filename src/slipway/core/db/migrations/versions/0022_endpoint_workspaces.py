"""endpoints belong to a workspace: they are stored under their scoped name
(``<workspace>/<name>``; the bare name in the default workspace, so every existing endpoint
is the default workspace's unchanged), which needs room for both

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 08:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_KEYS = {
    "slipway_endpoints": "name",
    "slipway_endpoint_configs": "endpoint",
    "slipway_gateway_models": "endpoint",
    "slipway_serving_stats": "endpoint",
}


def _resize(length: int) -> None:
    for table, column in _KEYS.items():
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                existing_type=sa.String(length=63 if length == 127 else 127),
                type_=sa.String(length=length),
                existing_nullable=False,
            )


def upgrade() -> None:
    _resize(127)


def downgrade() -> None:
    # Another workspace's endpoints have no place in a schema without workspaces.
    for table, column in _KEYS.items():
        op.execute(f"DELETE FROM {table} WHERE {column} LIKE '%/%'")
    _resize(63)
