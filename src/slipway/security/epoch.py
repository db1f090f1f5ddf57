"""Token changes, announced: a plane may keep the tokens it verified and still refuse a
revoked, rotated or re-granted secret at once.

The tracking server and the gateway check the caller's token on every request. Looking
it up each time is a database round trip (on PostgreSQL, through a thread, about a
millisecond — more than ``log_metric`` itself); keeping verified tokens for a while
would leave a revoked secret working for that while. So every change to the tokens
(create, revoke, rotate, a new grant) moves an *epoch*, and a cache entry
(:class:`~slipway.security.verified.VerifiedTokens`) holds only while the epoch it was
filled under does:

- a counter in a small file every process on this machine maps into memory (every
  process of a SQLite platform, and ``slipway up``'s on PostgreSQL): reading the epoch
  is a memory read and sees a change the moment the changing call returns;
- on PostgreSQL also a ``NOTIFY slipway_tokens`` after each change, counted by a listener
  thread in each caching process, for changes made on other machines. While the listener
  is not connected the epoch is unknown (``None``) and caches fall back to rechecking
  each token every second.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import threading
from collections.abc import Hashable
from pathlib import Path

from sqlalchemy import text

from slipway.core.db.engine import Database

log = logging.getLogger("slipway.security.epoch")

CHANNEL = "slipway_tokens"
_LISTEN_TIMEOUT = 1.0
_RECONNECT_SECONDS = 2.0
_WIDTH = 8
_COUNT = struct.Struct("<Q")


class _Counter:
    """An 8-byte counter in a file every process of the machine maps into memory: a
    change is one locked increment, and reading it is a memory read (a tenth of a
    microsecond, against two for a ``stat``), on every request of a busy gateway."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except PermissionError:  # a process that only reads (another user's file)
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    self._map = mmap.mmap(fd, _WIDTH, access=mmap.ACCESS_READ)
                finally:
                    os.close(fd)
                return self._map
            try:
                if os.fstat(fd).st_size < _WIDTH:
                    os.ftruncate(fd, _WIDTH)  # zeros: a racing creator writes the same
                self._map = mmap.mmap(fd, _WIDTH)
            finally:
                os.close(fd)
        return self._map

    def read(self) -> int:
        return int(_COUNT.unpack_from(self._map or self._mapped())[0])

    def bump(self) -> None:
        mapped = self._mapped()
        with self.path.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # increments from several processes add up
            value = (int.from_bytes(mapped[:_WIDTH], "little") + 1) % 2**64
            mapped[:_WIDTH] = value.to_bytes(_WIDTH, "little")

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


class TokenEpoch:
    """Moves on every token change; read by the planes that cache verified tokens."""

    def __init__(
        self, marker: Path | None, db: Database | None = None, url: str | None = None
    ) -> None:
        self._counter = _Counter(marker) if marker is not None else None
        self._db = db
        self._url = url  # PostgreSQL's libpq URL: changes from other machines are heard
        self._listener: _Listener | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_database(cls, db: Database, home: Path | None = None) -> TokenEpoch:
        """The epoch of the platform on ``db``: on SQLite a counter file beside the
        database file (every process sharing the file shares it); on PostgreSQL one in
        the platform's ``home`` (its processes on this machine) and the NOTIFY channel."""
        url = db.url
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                return cls(Path(f"{url.database}.token-epoch"))
            return cls(home / "token-epoch" if home else None)
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(home / "token-epoch" if home else None, db, libpq)

    def bump(self) -> None:
        """Announce a committed token change (call it after the commit)."""
        if self._counter is not None:
            self._counter.bump()
        if self._db is not None:
            with self._db.engine.connect() as conn:
                conn.execute(text(f"NOTIFY {CHANNEL}"))
                conn.commit()

    def current(self) -> Hashable | None:
        """The epoch now; None when it cannot be known (a listener not connected)."""
        local = self._counter.read() if self._counter is not None else 0
        if self._url is None:
            return local
        listener = self._listener
        if listener is None:
            with self._lock:
                if self._listener is None:
                    self._listener = _Listener(self._url)
                listener = self._listener
        heard = listener.heard()
        return None if heard is None else (local, heard)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        if self._counter is not None:
            self._counter.close()


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
