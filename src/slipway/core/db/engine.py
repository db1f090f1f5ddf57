"""Opening the metadata database: SQLite (embedded) or PostgreSQL (psycopg 3).

SQLite gets WAL journaling (readers never block the writer), a busy timeout (writers wait
for the lock instead of failing) and foreign keys. ``BEGIN IMMEDIATE`` is used for write
transactions that must not interleave (work queue claims) — see :meth:`Database.write`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from slipway.core.errors import BackendUnavailable, InvalidInput
from slipway.core.unavailable import as_unavailable


def normalize_url(url: str) -> str:
    """Map user-facing URLs to SQLAlchemy driver URLs (``postgresql://`` → psycopg 3)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Database:
    """An engine plus session factory for one metadata database URL."""

    def __init__(self, url: str, *, pool_size: int = 5, busy_timeout_ms: int = 30_000) -> None:
        try:
            parsed = make_url(normalize_url(url))
        except Exception:
            raise InvalidInput("database url is not a valid URL", field="database.url") from None
        self.url = parsed
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(parsed.render_as_string(False), busy_timeout_ms)
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                parsed,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                connect_args={"connect_timeout": 10},
            )
        else:
            raise InvalidInput(
                f"unsupported database {self.dialect!r}: use sqlite or postgresql",
                field="database.url",
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            self.engine.execution_options(slipway_immediate=True), expire_on_commit=False
        )

    @cached_property
    def lock_engine(self) -> Engine:
        """An unpooled engine for session-level locks (see :mod:`slipway.core.locks`)."""
        return create_engine(self.url, poolclass=NullPool)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction committed on success and rolled back on error.

        A database that cannot be reached (stopped, restarting, connections dropped)
        raises :class:`BackendUnavailable` (503, retry later) instead of the driver's
        error; the pool's pre-ping replaces dead connections once it is back."""
        with _reachable(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that holds the write lock from its start.

        On SQLite this is ``BEGIN IMMEDIATE``, so a read-then-update (a queue claim) cannot
        interleave with another writer; PostgreSQL callers lock rows explicitly instead
        (``FOR UPDATE SKIP LOCKED``), so this is a plain transaction there.
        """
        with _reachable(), self._write_sessions() as session, session.begin():
            yield session

    def ping(self) -> None:
        """Raise :class:`BackendUnavailable` unless a trivial query succeeds."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise BackendUnavailable(
                f"metadata database unreachable: {exc.orig}", details={"backend": "database"}
            ) from None

    def dispose(self) -> None:
        """Close pooled connections (call in a child process after fork, and at exit)."""
        self.engine.dispose()
        if "lock_engine" in self.__dict__:
            self.lock_engine.dispose()


@contextmanager
def _reachable() -> Iterator[None]:
    """Translate the driver's "cannot reach the database" errors (see
    :mod:`slipway.core.unavailable`); every other error passes unchanged."""
    try:
        yield
    except (DBAPIError, PoolTimeout) as exc:
        unavailable = as_unavailable(exc)
        if unavailable is None:
            raise
        raise unavailable from exc


def _sqlite_engine(url: str, busy_timeout_ms: int) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # pysqlite's implicit transactions are off (above), so begin explicitly; writers
        # that read-then-update take the lock up front to avoid upgrade deadlocks.
        immediate = conn.get_execution_options().get("slipway_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
