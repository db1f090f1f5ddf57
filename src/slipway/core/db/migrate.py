"""Alembic migrations for Slipway's tables, run programmatically.

Slipway keeps its own version table (``slipway_alembic_version``) so the database can be
shared with MLflow, whose tables and Alembic history are its own. Migrations run on first
use (:func:`ensure_schema`) and by ``slipway db upgrade``; concurrent starters are
serialized (PostgreSQL advisory lock, SQLite ``BEGIN IMMEDIATE``), so two processes
opening a fresh database at once do not both try to create it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from slipway.core.db.engine import Database

VERSION_TABLE = "slipway_alembic_version"
_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every Slipway process.
_PG_LOCK_KEY = 0x51177A7


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration this version of Slipway knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or ``None`` when Slipway's tables are absent."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the newest)."""
    with _locked(db) as conn:
        command.upgrade(_config(conn), revision)


def downgrade(db: Database, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` removes every Slipway table)."""
    with _locked(db) as conn:
        command.downgrade(_config(conn), revision)


def ensure_schema(db: Database) -> None:
    """Upgrade to the newest revision when the database is behind (cheap when it is not)."""
    if current_revision(db) != head_revision():
        upgrade(db)


class _locked:
    """A connection in a transaction that excludes every other migrating process."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> Connection:
        engine = self._db.engine
        if self._db.is_sqlite:
            engine = engine.execution_options(slipway_immediate=True)
        self._cm = engine.begin()
        conn = self._cm.__enter__()
        if not self._db.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        return conn

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)  # type: ignore[arg-type]
