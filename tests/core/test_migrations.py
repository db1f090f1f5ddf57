"""Migrations on empty SQLite and PostgreSQL databases, and the down/up round trip."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import slipway.services  # noqa: F401  (the assembled platform: every capability's tables)
from slipway.core.db import Database, current_revision, downgrade, head_revision, upgrade
from slipway.core.db.migrate import VERSION_TABLE, ensure_schema
from slipway.core.db.tables import Base

OWN_TABLES = {table.name for table in Base.metadata.sorted_tables}


def _tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def test_upgrade_empty_database_creates_every_table(database_url: str) -> None:
    db = Database(database_url)
    assert current_revision(db) is None
    upgrade(db)
    assert current_revision(db) == head_revision()
    assert OWN_TABLES | {VERSION_TABLE} <= _tables(db)
    db.dispose()


def test_downgrade_upgrade_round_trip(database_url: str) -> None:
    db = Database(database_url)
    upgrade(db)
    downgrade(db, "base")
    assert current_revision(db) is None
    assert _tables(db) & OWN_TABLES == set()
    upgrade(db)
    assert current_revision(db) == head_revision()
    assert _tables(db) >= OWN_TABLES
    db.dispose()


def test_migrations_build_exactly_the_declared_tables(database_url: str) -> None:
    """Each capability declares its tables in its own module; the migrations in core must
    build every one of them column for column, index for index (no drift either way)."""
    db = Database(database_url)
    upgrade(db)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, type_, _parent: (
                    type_ != "table"
                    or ((name or "").startswith("slipway_") and name != VERSION_TABLE)
                ),
            },
        )
        drift = [d for d in compare_metadata(context, Base.metadata) if d]
    db.dispose()
    assert drift == []


def test_foreign_tables_are_left_alone(database_url: str) -> None:
    """The database may be shared with MLflow; its tables must survive our migrations."""
    db = Database(database_url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('mlflow-head')")
    upgrade(db)
    downgrade(db, "base")
    assert {"experiments", "alembic_version"} <= _tables(db)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == (
            "mlflow-head"
        )
    db.dispose()


def test_ensure_schema_is_idempotent(database_url: str) -> None:
    db = Database(database_url)
    ensure_schema(db)
    ensure_schema(db)
    assert current_revision(db) == head_revision()
    db.dispose()
