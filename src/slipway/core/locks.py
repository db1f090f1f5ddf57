"""Named locks that exclude other processes, for critical sections that span engines.

Some sections write through two connections at once — Slipway's and MLflow's — so a
database transaction of our own cannot serialize them (on SQLite it would even deadlock
against MLflow's writer). PostgreSQL gets a session advisory lock keyed by the name's
hash; SQLite gets an exclusive ``flock`` on a file beside the database, which every process
on the machine sharing that file honours.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from slipway.core.db.engine import Database


def _key(name: str) -> int:
    # A signed 64-bit integer, as pg_advisory_lock takes.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def named_lock(db: Database, name: str) -> Iterator[None]:
    """Hold the lock ``name`` for the duration of the block, waiting for it if needed."""
    if db.is_sqlite:
        database = db.url.database or ""
        folder = Path(database).expanduser().resolve().parent if database else Path(".")
        path = folder / ".locks" / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    # A connection of its own, outside the pool: lock holders also need pooled
    # connections for their work, and waiters parked on the lock must not starve them.
    with db.lock_engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _key(name)})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
            conn.commit()
