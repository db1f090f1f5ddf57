"""The shared online store: one Redis hash per record.

Layout: ``{prefix}:{group}:{key}`` holds a hash with ``t`` (the event time in
microseconds, as a decimal integer string) and ``v`` (the payload bytes). The group is a
validated resource name, so it never contains ``:``; the key is everything after the
group and may contain anything.

A write runs a Lua script over a batch of records, which Redis executes atomically: for
each, compare the stored ``t`` with the incoming one and ``HSET`` only when the incoming
is at least as new. (Several keys per script call: a single Redis node, not Cluster.) Every
call is one network round trip: all of a write's scripts, all of a read's ``HMGET``s and
all of a delete's ``DEL``s are sent in one non-transactional pipeline.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from slipway.core.errors import BackendUnavailable, InvalidInput
from slipway.core.names import validate_name
from slipway.core.settings import mask_url
from slipway.features.online.base import OnlineRecordWrite, StoredRecord

# Lua numbers are doubles: event times beyond 2**53 would compare inexactly, so they are
# refused (2**53 µs after 1970 is in the year 2255).
MAX_EVENT_TIME_US = 2**53 - 1

# KEYS[i] = a record key; ARGV[2i-1], ARGV[2i] = its event time and payload. Applies the
# records in order, each only when at least as new as the stored one; returns how many
# applied. One call carries many records: the per-command cost on both sides (packing in
# redis-py, parsing in Redis) is paid once per batch, not per record.
_CONDITIONAL_SET = """
local applied = 0
for i = 1, #KEYS do
    local t = ARGV[2 * i - 1]
    local stored = redis.call('HGET', KEYS[i], 't')
    if not (stored and tonumber(stored) > tonumber(t)) then
        redis.call('HSET', KEYS[i], 't', t, 'v', ARGV[2 * i])
        applied = applied + 1
    end
end
return applied
"""
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
    return validate_name(name, field="group")


class RedisOnlineStore:
    """An :class:`~slipway.features.online.base.OnlineStore` in Redis.

    Thread-safe (redis-py's connection pool) and fork-safe (the pool reconnects in a
    child process). ``prefix`` namespaces every key so that several Slipway installs, or
    tests, can share one Redis database.
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
        # every call. A missing script is loaded on demand in _run_writes.
        self._script = self._client.register_script(_CONDITIONAL_SET)

    def _key(self, group: str, key: str) -> str:
        return f"{self._prefix}:{group}:{key}"

    def _pattern(self, group: str) -> str:
        return f"{self._prefix.translate(_GLOB_SPECIAL)}:{group}:*"

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
        """Conditionally set every record in one pipeline; see the protocol.

        Records for the same key are queued in order and Redis runs one connection's
        commands in order, so they are applied in order.
        """
        if not records:
            return 0
        _group(group)
        for record in records:
            if not -MAX_EVENT_TIME_US <= record.event_time_us <= MAX_EVENT_TIME_US:
                raise InvalidInput(
                    f"event time {record.event_time_us} µs is out of range", field="event_time"
                )
        calls = [(self._key(group, r.key), str(r.event_time_us), bytes(r.payload)) for r in records]
        with self._errors():
            return self._run_writes(calls)

    def _run_writes(self, calls: list[tuple[str, str, bytes]]) -> int:
        results = self._evalsha_all(calls)
        missing = next((i for i, r in enumerate(results) if isinstance(r, NoScriptError)), None)
        if missing is not None:
            # The server lost its script cache (restart, SCRIPT FLUSH). Every batch before
            # the first failure ran; load the script and replay the rest in order.
            # Re-running a record that did apply is harmless: its stored record is itself
            # or a newer one, so the outcome is the same.
            self._client.script_load(_CONDITIONAL_SET)
            results = results[:missing] + self._evalsha_all(calls[missing * _SCRIPT_BATCH :])
        for result in results:
            if isinstance(result, Exception):
                raise result
        return sum(results)

    def _evalsha_all(self, calls: list[tuple[str, str, bytes]]) -> list[Any]:
        """One result per batch of :data:`_SCRIPT_BATCH` calls (see ``_run_writes``)."""
        pipe = self._client.pipeline(transaction=False)
        for start in range(0, len(calls), _SCRIPT_BATCH):
            batch = calls[start : start + _SCRIPT_BATCH]
            args: list[Any] = [key for key, _, _ in batch]
            for _, event_time, payload in batch:
                args.append(event_time)
                args.append(payload)
            pipe.evalsha(self._script.sha, len(batch), *args)
        results: list[Any] = pipe.execute(raise_on_error=False)
        return results

    def read(self, requests: Mapping[str, Sequence[str]]) -> dict[str, list[StoredRecord | None]]:
        """One ``HMGET`` per key, all in one pipeline: one round trip for any request."""
        pipe = self._client.pipeline(transaction=False)
        for group, keys in requests.items():
            _group(group)
            for key in keys:
                pipe.hmget(self._key(group, key), ["t", "v"])
        with self._errors():
            replies: list[list[bytes | None]] = pipe.execute() if len(pipe) else []
        out: dict[str, list[StoredRecord | None]] = {}
        position = 0
        for group, keys in requests.items():
            records: list[StoredRecord | None] = []
            for event_time, payload in replies[position : position + len(keys)]:
                records.append(
                    None
                    if event_time is None or payload is None
                    else StoredRecord(int(event_time), payload)
                )
            position += len(keys)
            out[group] = records
        return out

    def delete(self, group: str, keys: Sequence[str]) -> int:
        """One ``DEL`` per key in one pipeline; returns how many existed."""
        if not keys:
            return 0
        _group(group)
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.delete(self._key(group, key))
        with self._errors():
            return sum(pipe.execute())

    def drop_group(self, group: str) -> None:
        """``SCAN`` the group's keys and ``UNLINK`` them in batches (not atomic: records
        written while the drop runs may survive)."""
        pattern = self._pattern(_group(group))
        with self._errors():
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
                batch.append(name)
                if len(batch) >= _SCAN_BATCH:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)

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
        self._client.close()
