"""Tokens verified recently, for a data plane that checks one on every request.

The control plane and the tracking server look a token up on each request (one indexed
read). The gateway cannot afford that: its own work per request is a fraction of a
millisecond, and a database round trip per invocation would cost more than the ≤ 5 %
of throughput authentication may take. So a gateway worker keeps each token it verified
for :data:`RECHECK_SECONDS`, then verifies it again: a revoked or rotated secret, a
changed grant or an expiry reaches every gateway worker within that time. Only tokens
that verified are kept (a wrong secret is looked up each time, as it must be: it may be
right a moment later), keyed by the secret's SHA-256, at most :data:`CAPACITY` of them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from slipway.core.clock import utcnow
from slipway.core.errors import Unauthorized
from slipway.security.resources import Token

RECHECK_SECONDS = 1.0
CAPACITY = 4096


class VerifiedTokens:
    """A bounded cache in front of ``authenticate`` (``TokenService.authenticate``)."""

    def __init__(
        self,
        authenticate: Callable[[str], Token],
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authenticate = authenticate
        self._recheck = recheck_seconds
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Token, float]] = OrderedDict()

    def cached(self, secret: str) -> Token | None:
        """The token ``secret`` verified as within the recheck time, else None (then
        :meth:`verify` it: it reads the database, so off the event loop)."""
        key = hashlib.sha256(secret.encode()).hexdigest()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            token, checked = entry
            if self._clock() - checked > self._recheck:
                return None
            self._entries.move_to_end(key)
        if token.expires_at is not None and token.expires_at <= utcnow():
            raise Unauthorized("unknown API token")
        return token

    def verify(self, secret: str) -> Token:
        """Look the token up (raising :class:`Unauthorized` as the service does) and
        keep it for the recheck time."""
        token = self._authenticate(secret)
        key = hashlib.sha256(secret.encode()).hexdigest()
        with self._lock:
            self._entries[key] = (token, self._clock())
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return token
