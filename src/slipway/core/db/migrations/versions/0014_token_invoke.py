"""api tokens: endpoints each token may invoke

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing tokens invoke nothing through the gateway until an admin grants it
    # (admins invoke every endpoint): the gateway had no authentication before.
    with op.batch_alter_table("slipway_api_tokens") as batch:
        batch.add_column(sa.Column("invoke", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("slipway_api_tokens") as batch:
        batch.drop_column("invoke")
