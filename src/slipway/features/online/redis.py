"""The shared online store: one Redis string per record.

Layout: ``{prefix}:{group}:{key}`` holds ``<event time>|<payload>``: the event time in
microseconds as a decimal integer, a ``|``, then the payload bytes (which may contain
anything; only the first ``|`` separates). The group is a validated resource name, so it
never contains ``:``; the key is everything after the group and may contain anything.

Reads go over a connection each thread holds (:class:`_ReadConnections`), not through
redis-py's pool and retry wrapper: on loopback that wrapper is about a quarter of a
one-key read (~25 µs of ~95), and a one-key read is the serving path's hot call.

Why strings and not a hash of ``t`` and ``v``: a read of many records is then one native
``MGET``. With hashes it was one ``HMGET`` per key — pipelined, but redis-py packs and
parses every command in Python (~15 µs a key) — or a Lua loop, which Redis runs ~3 µs a
key; ``MGET`` of 100 keys takes ~0.25 ms in all (``bench/NOTES.md``).

A write runs a Lua script over a batch of records, which Redis executes atomically: for
each, read the stored event time (``GETRANGE`` of the value's head) and ``SET`` only when
the incoming record is at least as new. (Several keys per script call: a single Redis
node, not Cluster.) Every call is one network round trip: a write's scripts, a large
read's ``MGET``s and a delete's ``DEL``s are each sent in one non-transactional pipeline.

The event log of a key is a sorted set at ``{prefix}#ev:{group}:{key}`` (a namespace the
records' ``{prefix}:`` pattern never matches) whose scores are the event times and whose
members are ``<event time>|<payload>``: unique per event time, so a ZSET holds one event
per time, and a window read is one ``ZRANGEBYSCORE``. An append runs a second Lua script
over a batch of events: for each, ``ZREMRANGEBYSCORE t t`` (the replaced event) and
``ZADD``; then, per key, ``ZREMRANGEBYSCORE`` below the key's newest score minus the
horizon — atomic per key because one script call holds each key's events (a key with
more events than a batch is split over calls in order, each leaving the log pruned).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

from slipway.core.errors import BackendUnavailable, InvalidInput
from slipway.core.settings import mask_url
from slipway.core.workspace import validate_scoped_name
from slipway.features.online.base import (
    MAX_EVENT_TIME_US,
    OnlineRecordWrite,
    StoredRecord,
    check_event_times,
    checked_horizon,
)

# KEYS[i] = a record key; ARGV[2i-1], ARGV[2i] = its event time and its whole value
# ("<event time>|<payload>", built by the client). Applies the records in order, each only
# when at least as new as the stored one; returns how many applied. An event time has at
# most 17 characters, so the first 24 bytes of a stored value always hold it and its "|".
# One call carries many records: the per-command cost on both sides (packing in redis-py,
# parsing in Redis) is paid once per batch, not per record.
_CONDITIONAL_SET = """
local applied = 0
for i = 1, #KEYS do
    local t = tonumber(ARGV[2 * i - 1])
    local head = redis.call('GETRANGE', KEYS[i], 0, 23)
    local bar = string.find(head, '|', 1, true)
    if not (bar and tonumber(string.sub(head, 1, bar - 1)) > t) then
        redis.call('SET', KEYS[i], ARGV[2 * i])
        applied = applied + 1
    end
end
return applied
"""
# KEYS[i] = an event log (a sorted set); ARGV[1] = the horizon; ARGV[1 + i] = how many
# events of KEYS[i] follow, and then each event's time and member ("<time>|<payload>"),
# key after key. The cutoff goes back to Redis as an integer string (scores are integers
# below 2**53, exact as doubles; Lua's tostring keeps only 14 significant digits).
_APPEND_EVENTS = """
local horizon = tonumber(ARGV[1])
local at = #KEYS + 2
for i = 1, #KEYS do
    for _ = 1, tonumber(ARGV[i + 1]) do
        redis.call('ZREMRANGEBYSCORE', KEYS[i], ARGV[at], ARGV[at])
        redis.call('ZADD', KEYS[i], ARGV[at], ARGV[at + 1])
        at = at + 2
    end
    local top = tonumber(redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('(%d', top - horizon))
end
return 0
"""

# Keys per MGET: one command holds Redis for well under a millisecond.
_READ_BATCH = 1000
# Records per script call: large enough to amortize the call, small enough that one call
# holds Redis for about a millisecond.
_SCRIPT_BATCH = 500

_SCAN_BATCH = 1000
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})

# A store lookup at serving time should fail in well under a second rather than retry
# for many seconds (redis-py's default), so the caller can fall back or report 503.
_RETRY = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), retries=2)


@functools.lru_cache(maxsize=4096)
def _group(name: str) -> str:
    # Cached: this runs on every read of the serving path.
    return validate_scoped_name(name, field="group")


class _Held:
    """A thread's read connection, as its thread-local holds it. When the thread ends the
    thread-local lets go of this object, which is in no reference cycle, so it closes the
    connection at once. (redis-py's connection objects are in cycles: left to the garbage
    collector, their socket may be finalized before them, still open.)"""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.disconnect()  # in a forked child this closes only the child's copy


class _ReadConnections:
    """One Redis connection per thread (and per process) for reads.

    A thread reuses its connection for every read; no other thread touches it, so no
    lock or pool checkout is paid per read. A forked child sees the parent's connection
    (its ``pid`` differs) and opens its own. A connection lives as long as its thread
    (see :class:`_Held`); :meth:`close_all` closes every live one.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._local = threading.local()
        # Weak: a finished thread's connection must not be kept alive by this set.
        self._live: weakref.WeakSet[Any] = weakref.WeakSet()

    def get(self) -> Any:
        held = getattr(self._local, "held", None)
        if held is None or held.conn.pid != os.getpid():
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
            self._local.held = _Held(conn)
            self._live.add(conn)
            return conn
        return held.conn

    def close_all(self) -> None:
        for conn in list(self._live):
            conn.disconnect()


def _event_batches(
    events_by_key: dict[str, list[OnlineRecordWrite]], prefix: str, horizon: int
) -> list[tuple[list[str], list[bytes]]]:
    """Script calls (keys, argv) of about :data:`_SCRIPT_BATCH` events each, every key's
    events in order; a key's events are split over consecutive calls only when they
    outnumber a batch."""
    batches: list[tuple[list[str], list[bytes]]] = []
    keys: list[str] = []
    counts: list[bytes] = []
    pairs: list[bytes] = []
    for key, events in events_by_key.items():
        for start in range(0, len(events), _SCRIPT_BATCH):
            piece = events[start : start + _SCRIPT_BATCH]
            keys.append(prefix + key)
            counts.append(b"%d" % len(piece))
            for event in piece:
                pairs.append(b"%d" % event.event_time_us)
                pairs.append(b"%d|%b" % (event.event_time_us, event.payload))
            if len(pairs) >= 2 * _SCRIPT_BATCH:
                batches.append((keys, [b"%d" % horizon, *counts, *pairs]))
                keys, counts, pairs = [], [], []
    if keys:
        batches.append((keys, [b"%d" % horizon, *counts, *pairs]))
    return batches


def _record(value: bytes | None) -> StoredRecord | None:
    if value is None:
        return None
    event_time, _, payload = value.partition(b"|")
    return StoredRecord(int(event_time), payload)


class RedisOnlineStore:
    """An :class:`~slipway.features.online.base.OnlineStore` in Redis.

    Thread-safe and fork-safe: writes and administration use redis-py's connection pool
    (which reconnects in a child process), reads a connection per thread and process.
    ``prefix`` namespaces every key so that several Slipway installs, or tests, can share
    one Redis database.
    """

    def __init__(self, url: str, *, prefix: str = "slipway") -> None:
        if not prefix:
            raise InvalidInput("redis key prefix must not be empty", field="online_store.url")
        self._url = mask_url(url)
        self._prefix = prefix
        try:
            self._client = redis.Redis.from_url(
                url, socket_connect_timeout=5, socket_timeout=5, retry=_RETRY
            )
        except ValueError as exc:
            raise InvalidInput(
                f"invalid redis url {self._url!r}: {exc}", field="online_store.url"
            ) from None
        # register_script only hashes the script; EVALSHA is sent directly (not through
        # Script.__call__), which in a pipeline would cost a SCRIPT EXISTS round trip on
        # every call. A missing script is loaded on demand in _run_scripts.
        self._script = self._client.register_script(_CONDITIONAL_SET)
        self._append_script = self._client.register_script(_APPEND_EVENTS)
        self._readers = _ReadConnections(self._client.connection_pool)

    def _key(self, group: str, key: str) -> str:
        return f"{self._prefix}:{group}:{key}"

    def _pattern(self, group: str) -> str:
        return f"{self._prefix.translate(_GLOB_SPECIAL)}:{group}:*"

    def _events_key(self, group: str, key: str) -> str:
        return f"{self._prefix}#ev:{group}:{key}"

    def _events_pattern(self, group: str) -> str:
        return f"{self._prefix.translate(_GLOB_SPECIAL)}#ev:{group}:*"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BackendUnavailable(
                f"cannot reach the online store at {self._url}: {exc}", details={"url": self._url}
            ) from None
        except RedisError as exc:
            # Out of memory, a read-only replica, a foreign value under our key: the store
            # answered but cannot serve, which callers treat like an unreachable one.
            raise BackendUnavailable(
                f"the online store at {self._url} failed: {exc}", details={"url": self._url}
            ) from None

    def write(self, group: str, records: Sequence[OnlineRecordWrite]) -> int:
        """Conditionally set every record, in script calls on one connection; see the
        protocol.

        Records for the same key are sent in order and Redis runs one connection's
        commands in order, so they are applied in order.
        """
        if not records:
            return 0
        prefix = f"{self._prefix}:{_group(group)}:"
        keys: list[str] = []
        args: list[bytes] = []
        for record in records:
            event_time = record.event_time_us
            if not -MAX_EVENT_TIME_US <= event_time <= MAX_EVENT_TIME_US:
                raise InvalidInput(
                    f"event time {event_time} µs is out of range", field="event_time"
                )
            keys.append(prefix + record.key)
            args.append(b"%d" % event_time)
            args.append(b"%d|%b" % (event_time, record.payload))
        batches = [
            (keys[start : start + _SCRIPT_BATCH], args[2 * start : 2 * (start + _SCRIPT_BATCH)])
            for start in range(0, len(keys), _SCRIPT_BATCH)
        ]
        with self._errors():
            return sum(self._run_scripts(self._script, batches))

    def _run_scripts(self, script: Any, batches: list[tuple[list[str], list[bytes]]]) -> list[Any]:
        """Run ``script`` once per (keys, argv) batch, in order; one result per batch.

        Re-running a batch that already ran (below) is harmless for both scripts: a
        conditional set leaves the stored record itself or a newer one, and an append
        ends with the same events and pruning (its effect lands while the call runs)."""
        results = self._evalsha_all(script.sha, batches)
        missing = next((i for i, r in enumerate(results) if isinstance(r, NoScriptError)), None)
        if missing is not None:
            # The server lost its script cache (restart, SCRIPT FLUSH). Every batch before
            # the first failure ran; load the script and replay the rest in order.
            self._client.script_load(script.script)
            results = results[:missing] + self._evalsha_all(script.sha, batches[missing:])
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _evalsha_all(self, sha: str, batches: list[tuple[list[str], list[bytes]]]) -> list[Any]:
        """One result per batch (see ``_run_scripts``).

        Each batch is packed and sent before the next is packed, and the replies are read
        at the end: Redis runs batch *n* while this process packs batch *n + 1* (a
        pipeline packs everything first, then waits for everything). A lost connection
        retries the whole call, which is harmless for the same reason as above."""
        for attempt in range(3):
            try:
                return self._send_batches(sha, batches)
            except (redis.ConnectionError, redis.TimeoutError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _send_batches(self, sha: str, batches: list[tuple[list[str], list[bytes]]]) -> list[Any]:
        pool = self._client.connection_pool
        conn: Any = pool.get_connection()  # redis-py leaves some of its methods untyped
        try:
            sent = 0
            for keys, values in batches:
                command = conn.pack_command("EVALSHA", sha, len(keys), *keys, *values)
                conn.send_packed_command(command, check_health=sent == 0)
                sent += 1
            results: list[Any] = []
            for _ in range(sent):
                try:
                    results.append(conn.read_response())
                except ResponseError as exc:  # a script error: the connection is still in step
                    results.append(exc)
            return results
        except BaseException:
            conn.disconnect()  # replies may be left unread: never reuse this connection
            raise
        finally:
            pool.release(conn)

    def read(self, requests: Mapping[str, Sequence[str]]) -> dict[str, list[StoredRecord | None]]:
        """Every key of every group in one ``MGET`` (a pipeline of them past
        :data:`_READ_BATCH` keys): one round trip for any request."""
        names = [self._key(_group(group), key) for group, keys in requests.items() for key in keys]
        with self._errors():
            values = self._mget(names) if names else []
        out: dict[str, list[StoredRecord | None]] = {}
        position = 0
        for group, keys in requests.items():
            out[group] = [_record(v) for v in values[position : position + len(keys)]]
            position += len(keys)
        return out

    def _mget(self, names: list[str]) -> list[bytes | None]:
        """``MGET`` in batches of :data:`_READ_BATCH` on this thread's connection: all
        batches are sent, then all replies read. A connection found broken (Redis
        restarted, or closed it while idle) is replaced once; a read is safe to repeat."""
        for attempt in range(2):
            conn = self._readers.get()
            try:
                return self._mget_on(conn, names)
            except redis.ConnectionError:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _mget_on(conn: Any, names: list[str]) -> list[bytes | None]:
        try:
            if len(names) <= _READ_BATCH:
                conn.send_packed_command(conn.pack_command("MGET", *names), check_health=False)
                return cast("list[bytes | None]", conn.read_response())
            commands = [
                ("MGET", *names[start : start + _READ_BATCH])
                for start in range(0, len(names), _READ_BATCH)
            ]
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            return [value for _ in commands for value in conn.read_response()]
        except BaseException:
            # Replies may be left unread (an error reply, an interrupt between send and
            # read): the connection is out of step and must never be reused.
            conn.disconnect()
            raise

    def delete(self, group: str, keys: Sequence[str]) -> int:
        """One ``DEL`` of the record and one of the event log per key, in one pipeline;
        returns how many records existed."""
        if not keys:
            return 0
        _group(group)
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.delete(self._key(group, key))
            pipe.delete(self._events_key(group, key))
        with self._errors():
            return sum(pipe.execute()[::2])

    def drop_group(self, group: str) -> None:
        """``SCAN`` the group's records and event logs and ``UNLINK`` them in batches (not
        atomic: records or events written while the drop runs may survive)."""
        _group(group)
        with self._errors():
            for pattern in (self._pattern(group), self._events_pattern(group)):
                batch: list[bytes] = []
                for name in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
                    batch.append(name)
                    if len(batch) >= _SCAN_BATCH:
                        self._client.unlink(*batch)
                        batch = []
                if batch:
                    self._client.unlink(*batch)

    def append_events(
        self, group: str, events: Sequence[OnlineRecordWrite], horizon_us: int
    ) -> None:
        """Upsert and prune with :data:`_APPEND_EVENTS`, one script call per batch of
        events, all sent on one connection; see the protocol.

        Events already older than their key's newest event *in this call* minus the
        horizon are not sent: the script would prune them (and any stored event at their
        time) at once, since the key's newest stored event can only be newer."""
        horizon = checked_horizon(horizon_us)
        if not events:
            return
        prefix = self._events_key(_group(group), "")
        check_event_times(events)
        by_key: dict[str, list[OnlineRecordWrite]] = {}
        for event in events:
            by_key.setdefault(event.key, []).append(event)
        sent: dict[str, list[OnlineRecordWrite]] = {}
        for key, mine in by_key.items():
            cutoff = max(e.event_time_us for e in mine) - horizon
            sent[key] = [e for e in mine if e.event_time_us >= cutoff]
        batches = _event_batches(sent, prefix, horizon)
        with self._errors():
            self._run_scripts(self._append_script, batches)

    def read_events(
        self, group: str, keys: Sequence[str], since_us: int, until_us: int
    ) -> list[list[StoredRecord]]:
        """One ``ZRANGEBYSCORE`` per key, all in one pipeline on this thread's read
        connection (as :meth:`read`): one round trip for any number of keys."""
        _group(group)
        since, until = max(since_us, -MAX_EVENT_TIME_US), min(until_us, MAX_EVENT_TIME_US)
        if not keys or since > until:
            return [[] for _ in keys]
        names = [self._events_key(group, key) for key in keys]
        with self._errors():
            replies = self._zranges(names, b"%d" % since, b"%d" % until)
        out: list[list[StoredRecord]] = []
        for members in replies:
            events = []
            for member in members:
                event_time, _, payload = member.partition(b"|")
                events.append(StoredRecord(int(event_time), payload))
            out.append(events)
        return out

    def _zranges(self, names: list[str], since: bytes, until: bytes) -> list[list[bytes]]:
        """Like :meth:`_mget`: on this thread's connection, replaced once if broken."""
        for attempt in range(2):
            conn = self._readers.get()
            try:
                return self._zranges_on(conn, names, since, until)
            except redis.ConnectionError:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _zranges_on(conn: Any, names: list[str], since: bytes, until: bytes) -> list[list[bytes]]:
        try:
            if len(names) == 1:
                command = conn.pack_command("ZRANGEBYSCORE", names[0], since, until)
                conn.send_packed_command(command, check_health=False)
                return [conn.read_response()]
            commands = [("ZRANGEBYSCORE", name, since, until) for name in names]
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            return [conn.read_response() for _ in names]
        except BaseException:
            conn.disconnect()  # out of step, as in _mget_on
            raise

    def delete_events(self, group: str, keys: Sequence[str]) -> int:
        """``ZCARD`` and ``DEL`` of each key's log in one ``MULTI``/``EXEC`` (so the count
        is what was deleted); returns how many events went."""
        if not keys:
            return 0
        _group(group)
        pipe = self._client.pipeline(transaction=True)
        for key in keys:
            name = self._events_key(group, key)
            pipe.zcard(name)
            pipe.delete(name)
        with self._errors():
            return sum(pipe.execute()[::2])

    def count(self, group: str) -> int:
        """Count by ``SCAN`` (linear in the database size; for statistics and tests)."""
        pattern = self._pattern(_group(group))
        with self._errors():
            # SCAN may return a key more than once (while Redis rehashes): count distinct.
            return len(set(self._client.scan_iter(match=pattern, count=_SCAN_BATCH)))

    def ping(self) -> None:
        with self._errors():
            self._client.ping()

    def close(self) -> None:
        self._readers.close_all()
        self._client.close()
