"""The embedded online store: one SQLite file, shared by every thread and process.

Correctness across writers comes from SQLite itself: each ``write`` is one
``BEGIN IMMEDIATE`` transaction (the database's single write lock) whose upsert only
replaces a row when the incoming event time is at least the stored one, so the check and
the write are atomic per key against every other writer, in this process or another.

Reads are the serving hot path, so this module uses the stdlib ``sqlite3`` directly,
keeps one connection per thread (``sqlite3`` connections must not be shared by threads
that run statements concurrently) and relies on the connection's statement cache.

The event log is a second table, ``online_events``, keyed by (group, key, event time)
``WITHOUT ROWID``: a key's events are one contiguous, time-ordered range of the primary
key's b-tree, so a window read is one range scan and a prune one range delete. An
``append_events`` call is one ``BEGIN IMMEDIATE`` transaction (upsert, then prune each
touched key below its latest event minus the horizon), atomic like ``write``.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

from slipway.core.errors import BackendUnavailable, InvalidInput
from slipway.core.workspace import validate_scoped_name
from slipway.features.online.base import (
    MAX_EVENT_TIME_US,
    OnlineRecordWrite,
    StoredRecord,
    check_event_times,
    checked_horizon,
)

# SQLite may be built with SQLITE_MAX_VARIABLE_NUMBER as low as 999 (group + keys).
_CHUNK = 500
_BUSY_TIMEOUT_MS = 30_000
# An upper bound on what is mapped (address space, not memory: pages are the OS's cache).
_MMAP_BYTES = 8 * 1024**3
# Each connection's page cache, in KiB (what a write's changed pages are held in).
_CACHE_KIB = 64 * 1024


_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_records (
    grp TEXT NOT NULL,
    key TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (grp, key)
) WITHOUT ROWID
"""

_EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_events (
    grp TEXT NOT NULL,
    key TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (grp, key, event_time)
) WITHOUT ROWID
"""

# The same (key, event time) again replaces the payload: the later write wins.
_EVENT_UPSERT = """
INSERT INTO online_events (grp, key, event_time, payload) VALUES (?, ?, ?, ?)
ON CONFLICT (grp, key, event_time) DO UPDATE SET payload = excluded.payload
"""

# A key's events older than its newest minus the horizon; the newest is the last entry of
# the key's range of the primary key (a seek, not a scan).
_EVENT_PRUNE = """
DELETE FROM online_events WHERE grp = ?1 AND key = ?2 AND event_time < (
    SELECT max(event_time) FROM online_events WHERE grp = ?1 AND key = ?2
) - ?3
"""

# One key's window: the serving path's usual read, without the key column to skip over.
# Its ORDER BY is the primary key's order: a range scan, no sort.
_SELECT_KEY_EVENTS = """
SELECT event_time, payload FROM online_events
WHERE grp = ? AND key = ? AND event_time BETWEEN ? AND ? ORDER BY event_time
"""
_stored = StoredRecord._make


# Ties apply (>=): the contract says the incoming record wins on equal event times.
_UPSERT = """
INSERT INTO online_records (grp, key, event_time, payload) VALUES (?, ?, ?, ?)
ON CONFLICT (grp, key) DO UPDATE SET event_time = excluded.event_time,
    payload = excluded.payload
WHERE excluded.event_time >= online_records.event_time
"""


@functools.lru_cache(maxsize=4096)
def _group(name: str) -> str:
    # Cached: this runs on every read of the serving path.
    return validate_scoped_name(name, field="group")


@functools.lru_cache(maxsize=_CHUNK + 1)
def _select(count: int) -> str:
    """The read query for ``count`` keys (built once per count)."""
    return (
        "SELECT key, event_time, payload FROM online_records"
        f" WHERE grp = ? AND key IN ({','.join('?' * count)})"
    )


@functools.lru_cache(maxsize=_CHUNK + 1)
def _select_events(count: int) -> str:
    """The event read query for ``count`` keys. ``ORDER BY key, event_time`` is the
    primary key's order: SQLite walks the sorted ``IN`` list's ranges without sorting."""
    return (
        "SELECT key, event_time, payload FROM online_events"
        f" WHERE grp = ? AND key IN ({','.join('?' * count)})"
        " AND event_time BETWEEN ? AND ? ORDER BY key, event_time"
    )


class SQLiteOnlineStore:
    """An :class:`~slipway.features.online.base.OnlineStore` in a SQLite file (WAL mode).

    Safe to share between threads (a connection per thread) and to open from many
    processes at once. After ``os.fork`` the child opens fresh connections: SQLite
    connections must never be used across a fork. ``:memory:`` is refused because every
    thread would see a different database.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        text = os.fspath(path)
        if not text or text == ":memory:":
            raise InvalidInput(
                f"online store path {text!r} must be a file path", field="online_store.url"
            )
        self.path = Path(text).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._abandoned: list[sqlite3.Connection] = []
        _LIVE_STORES.add(self)
        with self._errors():
            conn = self._connection()
            conn.execute(_SCHEMA)
            conn.execute(_EVENTS_SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> SQLiteOnlineStore:
        """Open ``sqlite:///relative/path`` or ``sqlite:////absolute/path``."""
        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix):
            raise InvalidInput(
                f"online store url {url!r} must look like sqlite:///path/to/online.db",
                field="online_store.url",
            )
        return cls(url[len(prefix) :])

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        # isolation_level=None: we issue BEGIN ourselves so a write takes the write lock
        # up front (IMMEDIATE) instead of upgrading mid-transaction, which can deadlock.
        # check_same_thread=False only so close() may close it from another thread.
        # ``timeout`` is SQLite's busy_timeout: how long to wait for another writer.
        conn = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode keeps the database consistent on power loss; at worst the
        # last commits are lost, acceptable for a cache of the latest feature values.
        conn.execute("PRAGMA synchronous = NORMAL")
        # Reads map the file instead of copying pages through read() calls into a 2 MB
        # per-connection cache: with the store bigger than that cache, a 100-key read
        # spent most of its time in those copies.
        conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
        # A write changes pages all over the tables (keys arrive in no order); with the
        # default 2 MB cache a 10,000-event append re-read and re-wrote the same pages
        # (64 MB: 25-35 % less time per appended event). Reads map the file instead, so
        # a connection that only reads holds little of it.
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            # Locked past the busy timeout, disk full, unreadable file: the store is there
            # but cannot serve, which callers handle like an unreachable backend.
            raise BackendUnavailable(
                f"online store {self.path} is unavailable: {exc}", details={"path": str(self.path)}
            ) from None

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection, begin: str) -> Iterator[None]:
        conn.execute(begin)
        try:
            yield
        except BaseException:
            # SQLite may already have rolled back (e.g. disk full); a second ROLLBACK
            # would then fail and hide the original error.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def write(self, group: str, records: Sequence[OnlineRecordWrite]) -> int:
        """Upsert in one transaction; see the protocol. Returns the rows applied."""
        if not records:
            return 0
        _group(group)
        check_event_times(records)
        rows = [(group, r.key, r.event_time_us, r.payload) for r in records]
        with self._errors():
            conn = self._connection()
            before = conn.total_changes
            with self._transaction(conn, "BEGIN IMMEDIATE"):
                conn.executemany(_UPSERT, rows)
            # total_changes counts inserts and updates that happened; an upsert whose
            # WHERE rejected the older record changes nothing and is not counted.
            return conn.total_changes - before

    def read(self, requests: Mapping[str, Sequence[str]]) -> dict[str, list[StoredRecord | None]]:
        """One query per group and chunk of keys; a snapshot when more than one runs."""
        with self._errors():
            conn = self._connection()
            queries = sum((len(keys) + _CHUNK - 1) // _CHUNK for keys in requests.values())
            # Several queries run in one read transaction so they all see one snapshot.
            with self._transaction(conn, "BEGIN") if queries > 1 else nullcontext():
                return {
                    group: self._read_group(conn, group, keys) for group, keys in requests.items()
                }

    def _read_group(
        self, conn: sqlite3.Connection, group: str, keys: Sequence[str]
    ) -> list[StoredRecord | None]:
        found: dict[str, StoredRecord] = {}
        _group(group)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            rows = conn.execute(_select(len(chunk)), (group, *chunk)).fetchall()
            found.update({key: StoredRecord(t, payload) for key, t, payload in rows})
        return [found.get(key) for key in keys]

    def delete(self, group: str, keys: Sequence[str]) -> int:
        """Delete records and events in one transaction; returns how many of ``keys``
        had a record."""
        if not keys:
            return 0
        _group(group)
        with self._errors():
            conn = self._connection()
            with self._transaction(conn, "BEGIN IMMEDIATE"):
                removed = self._delete_keys(conn, "online_records", group, keys)
                self._delete_keys(conn, "online_events", group, keys)
            return removed

    @staticmethod
    def _delete_keys(conn: sqlite3.Connection, table: str, group: str, keys: Sequence[str]) -> int:
        before = conn.total_changes
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            conn.execute(
                f"DELETE FROM {table} WHERE grp = ? AND key IN ({','.join('?' * len(chunk))})",
                (group, *chunk),
            )
        return conn.total_changes - before

    def drop_group(self, group: str) -> None:
        """Records and events go in one transaction."""
        _group(group)
        with self._errors():
            conn = self._connection()
            with self._transaction(conn, "BEGIN IMMEDIATE"):
                conn.execute("DELETE FROM online_records WHERE grp = ?", (group,))
                conn.execute("DELETE FROM online_events WHERE grp = ?", (group,))

    def append_events(
        self, group: str, events: Sequence[OnlineRecordWrite], horizon_us: int
    ) -> None:
        """Upsert, then prune each key the call touched, in one ``BEGIN IMMEDIATE``
        transaction; see the protocol."""
        horizon = checked_horizon(horizon_us)
        if not events:
            return
        _group(group)
        check_event_times(events)
        rows = [(group, e.key, e.event_time_us, e.payload) for e in events]
        keys = [(group, key, horizon) for key in dict.fromkeys(e.key for e in events)]
        with self._errors():
            conn = self._connection()
            with self._transaction(conn, "BEGIN IMMEDIATE"):
                conn.executemany(_EVENT_UPSERT, rows)
                conn.executemany(_EVENT_PRUNE, keys)

    def read_events(
        self, group: str, keys: Sequence[str], since_us: int, until_us: int
    ) -> list[list[StoredRecord]]:
        """One range scan per key, one query per chunk of keys (in one read transaction
        when there are several, so that they share a snapshot)."""
        _group(group)
        since, until = max(since_us, -MAX_EVENT_TIME_US), min(until_us, MAX_EVENT_TIME_US)
        if not keys or since > until:
            return [[] for _ in keys]
        found: dict[str, list[StoredRecord]] = {}
        with self._errors():
            conn = self._connection()
            if len(keys) == 1:
                rows = conn.execute(_SELECT_KEY_EVENTS, (group, keys[0], since, until))
                return [list(map(_stored, rows))]
            with self._transaction(conn, "BEGIN") if len(keys) > _CHUNK else nullcontext():
                for start in range(0, len(keys), _CHUNK):
                    chunk = keys[start : start + _CHUNK]
                    rows = conn.execute(_select_events(len(chunk)), (group, *chunk, since, until))
                    for key, events in itertools.groupby(rows, key=operator.itemgetter(0)):
                        found[key] = [StoredRecord(t, payload) for _, t, payload in events]
        # A key asked twice gets two lists: a caller may change one without the other.
        return [list(found.get(key, ())) for key in keys]

    def delete_events(self, group: str, keys: Sequence[str]) -> int:
        """Delete in one transaction; returns how many events went."""
        if not keys:
            return 0
        _group(group)
        with self._errors():
            conn = self._connection()
            with self._transaction(conn, "BEGIN IMMEDIATE"):
                return self._delete_keys(conn, "online_events", group, keys)

    def count(self, group: str) -> int:
        _group(group)
        with self._errors():
            sql = "SELECT count(*) FROM online_records WHERE grp = ?"
            return int(self._connection().execute(sql, (group,)).fetchone()[0])

    def ping(self) -> None:
        with self._errors():
            self._connection().execute("SELECT 1 FROM online_records LIMIT 1").fetchall()

    def close(self) -> None:
        """Close every thread's connection; the store reopens lazily if used again."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            conn.close()

    def _forget_after_fork(self) -> None:
        # The parent's connections are unusable in the child and must not be closed
        # there either (closing could disturb the parent's locks): drop them unclosed.
        self._abandoned.extend(self._connections)
        self._connections = []
        self._local = threading.local()
        self._lock = threading.Lock()


_LIVE_STORES: weakref.WeakSet[SQLiteOnlineStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_LIVE_STORES):
        store._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
