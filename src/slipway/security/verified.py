"""Tokens verified recently, for the planes that check one on every request.

The control plane looks a token up on each request (one indexed read). The gateway and
the tracking server cannot afford that: the gateway's own work per request is a fraction
of a millisecond, and ``log_metric`` on the tracking server about a millisecond, so a
database round trip per call would cost more than authentication may take (≤ 5 % of
gateway throughput, ≤ 0.5 ms of ``log_metric``). So they keep each token they verified,
keyed by the secret's SHA-256 (only tokens that verified: a wrong secret is looked up
each time), at most :data:`CAPACITY` of them, for:

- :data:`TRUSTED_SECONDS` while the token epoch (:mod:`slipway.security.epoch`) has not
  moved since the token was verified — any revocation, rotation or grant moves it, so
  such a change is refused from the moment it returns;
- :data:`RECHECK_SECONDS` when the epoch cannot be known (no epoch given, or the
  PostgreSQL listener is reconnecting).

An expiry is checked on every use, cached or not.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable

from slipway.core.clock import utcnow
from slipway.core.errors import Unauthorized
from slipway.security.resources import Token

RECHECK_SECONDS = 1.0
# Bounds how far behind a token's ``last_used_at`` may fall (it is stamped on lookups).
TRUSTED_SECONDS = 30.0
CAPACITY = 4096


def _unknown() -> Hashable | None:
    return None


class VerifiedTokens:
    """A bounded cache in front of ``authenticate`` (``TokenService.authenticate``)."""

    def __init__(
        self,
        authenticate: Callable[[str], Token],
        *,
        epoch: Callable[[], Hashable | None] = _unknown,
        recheck_seconds: float = RECHECK_SECONDS,
        trusted_seconds: float = TRUSTED_SECONDS,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authenticate = authenticate
        self._epoch = epoch
        self._recheck = recheck_seconds
        self._trusted = trusted_seconds
        self._capacity = capacity
        self._clock = clock
        # Writers (verify, from worker threads) hold the lock; readers do not need it: a
        # dict's get is atomic, and an entry is a tuple replaced whole. Eviction is oldest
        # first (by when a token was verified), so a read never has to reorder anything.
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[Token, float, Hashable | None]] = {}

    def cached(self, secret: str) -> Token | None:
        """The token ``secret`` verified as within the recheck time, else None (then
        :meth:`verify` it: it reads the database, so off the event loop)."""
        return self.lookup(key_of(secret.encode()))

    def lookup(self, key: bytes) -> Token | None:
        """:meth:`cached` by the :func:`key_of` what the caller presented: a plane that
        hashes the raw ``Authorization`` header skips decoding and parsing it."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        token, checked, filled = entry
        epoch = self._epoch()
        if epoch is not None and filled is not None and epoch != filled:
            return None  # the tokens changed since: verify again
        limit = self._trusted if epoch is not None and epoch == filled else self._recheck
        if self._clock() - checked > limit:
            return None
        if token.expires_at is not None and token.expires_at <= utcnow():
            raise Unauthorized("unknown API token")
        return token

    def verify(self, secret: str, *, key: bytes | None = None) -> Token:
        """Look the token up (raising :class:`Unauthorized` as the service does) and
        keep it for the recheck time, under ``key`` when the caller looks it up by one
        (:meth:`lookup`), else under the secret's."""
        # The epoch is read before the lookup: a change landing in between leaves the
        # entry filed under the old epoch, so the next use verifies again.
        epoch = self._epoch()
        token = self._authenticate(secret)
        key = key or key_of(secret.encode())
        with self._lock:
            self._entries.pop(key, None)  # re-filed as the newest
            self._entries[key] = (token, self._clock(), epoch)
            while len(self._entries) > self._capacity:
                del self._entries[next(iter(self._entries))]
        return token


def key_of(presented: bytes) -> bytes:
    """What a verified token is kept under: the SHA-256 of what the caller presented (a
    secret, or a whole ``Authorization`` value), never the secret itself."""
    return hashlib.sha256(presented).digest()
