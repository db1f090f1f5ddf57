"""Token changes, announced: a plane may keep the tokens it verified and still refuse a
revoked, rotated or re-granted secret at once.

The tracking server and the gateway check the caller's token on every request. Looking
it up each time is a database round trip (on PostgreSQL, through a thread, about a
millisecond — more than ``log_metric`` itself); keeping verified tokens for a while
would leave a revoked secret working for that while. So every change to the tokens
(create, revoke, rotate, a new grant) moves an *epoch*, and a cache entry
(:class:`~slipway.security.verified.VerifiedTokens`) holds only while the epoch it was
filled under does:

- a marker file, replaced on each change, for the processes on this machine (every
  process of a SQLite platform, and ``slipway up``'s on PostgreSQL): reading the epoch
  is one ``stat`` (a few microseconds) and sees a change the moment the changing call
  returns;
- on PostgreSQL also a ``NOTIFY slipway_tokens`` after each change, counted by a listener
  thread in each caching process, for changes made on other machines. While the listener
  is not connected the epoch is unknown (``None``) and caches fall back to rechecking
  each token every second.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Hashable
from pathlib import Path

from sqlalchemy import text

from slipway.core.db.engine import Database

log = logging.getLogger("slipway.security.epoch")

CHANNEL = "slipway_tokens"
_LISTEN_TIMEOUT = 1.0
_RECONNECT_SECONDS = 2.0


class TokenEpoch:
    """Moves on every token change; read by the planes that cache verified tokens."""

    def __init__(
        self, marker: Path | None, db: Database | None = None, url: str | None = None
    ) -> None:
        self.marker = marker
        self._db = db
        self._url = url  # PostgreSQL's libpq URL: changes from other machines are heard
        self._listener: _Listener | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_database(cls, db: Database, home: Path | None = None) -> TokenEpoch:
        """The epoch of the platform on ``db``: on SQLite a marker beside the database
        file (every process sharing the file shares it); on PostgreSQL a marker in the
        platform's ``home`` (its processes on this machine) and the NOTIFY channel."""
        url = db.url
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                return cls(Path(f"{url.database}.token-epoch"))
            return cls(home / "token-epoch" if home else None)
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(home / "token-epoch" if home else None, db, libpq)

    def bump(self) -> None:
        """Announce a committed token change (call it after the commit)."""
        if self.marker is not None:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            # A new file renamed over the old one: a new inode every time, so two changes
            # in the same clock tick still read as two.
            fd, tmp = tempfile.mkstemp(prefix=".token-epoch-", dir=self.marker.parent)
            os.close(fd)
            os.replace(tmp, self.marker)
        if self._db is not None:
            with self._db.engine.connect() as conn:
                conn.execute(text(f"NOTIFY {CHANNEL}"))
                conn.commit()

    def current(self) -> Hashable | None:
        """The epoch now; None when it cannot be known (a listener not connected)."""
        local: tuple[int, int] = (0, 0)
        if self.marker is not None:
            try:
                found = os.stat(self.marker)
                local = (found.st_ino, found.st_mtime_ns)
            except FileNotFoundError:
                pass
        if self._url is None:
            return local
        with self._lock:
            if self._listener is None:
                self._listener = _Listener(self._url)
        heard = self._listener.heard()
        return None if heard is None else (local, heard)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()


class _Listener:
    """A thread LISTENing on :data:`CHANNEL`, counting what it hears. Connecting counts
    too: notifications sent while it was away are lost, so anything cached before is
    stale."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._count: int | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="token-epoch", daemon=True)
        self._thread.start()

    def heard(self) -> int | None:
        return self._count

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        import psycopg  # only where PostgreSQL is the database

        heard = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    heard += 1
                    self._count = heard
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=_LISTEN_TIMEOUT):
                            heard += 1
                            self._count = heard
            except Exception as exc:  # the database is away: unknown until it is back
                self._count = None
                log.warning("token change listener disconnected: %s", exc)
                self._stopping.wait(_RECONNECT_SECONDS)
