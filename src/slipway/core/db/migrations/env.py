"""Alembic environment: always run on a connection handed in by slipway.core.db.migrate."""

from __future__ import annotations

from alembic import context

from slipway.core.db.migrate import VERSION_TABLE
from slipway.core.db.tables import Base


def _own_tables(name: str | None, type_: str, _parent: object) -> bool:
    # The database may be shared with MLflow: never touch tables that are not ours.
    return type_ != "table" or (name or "").startswith("slipway_")


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    include_name=_own_tables,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
