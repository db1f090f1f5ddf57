"""One lock around MLflow's schema set-up, for every process that opens MLflow's store.

MLflow's SQL store looks for its tables and then creates them (its own Alembic history)
without a lock, so two processes opening a fresh database at once — the tracking server
and a worker's or the control plane's registry client, or two of them — can both try to
create them, and one dies on a duplicate key. Every Slipway process takes this lock around
opening the store: a PostgreSQL advisory lock, or on SQLite a lock on the database's
folder. On an up-to-date database the set-up inside finds its tables and is quick.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

# Any constant works (distinct from Slipway's other advisory locks); it only has to be the
# same in every Slipway process.
PG_INIT_LOCK_KEY = 0x51177A9


@contextmanager
def schema_lock(store_uri: str) -> Iterator[None]:
    """Hold the lock while MLflow's store at ``store_uri`` is opened (set up if need be).
    A tracking server's ``http(s)://`` URI needs none: the server set its store up."""
    if store_uri.split(":", 1)[0] in ("http", "https"):
        yield
        return
    url = make_url(store_uri)
    if url.get_backend_name() == "postgresql":
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_INIT_LOCK_KEY})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_INIT_LOCK_KEY})
        finally:
            engine.dispose()
        return
    # SQLite: a lock on the database's folder, which needs no lock file of its own.
    folder = Path(url.database or ".").expanduser().resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
