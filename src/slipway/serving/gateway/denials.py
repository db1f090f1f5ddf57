"""The gateway's refusals, for the audit log.

Every 401 and 403 the gateway answers (no token, a wrong one, a token not granted the
endpoint, a foreign ``Host``) is an audit entry like the control plane's and the tracking
server's: actor (the token's name, or ``unauthenticated``), ``gateway METHOD template``,
the path, the status and the reason. The gateway cannot write it on the request's path —
a refusal costs microseconds, a database write milliseconds, and a flood of refusals
would otherwise become a flood of writes — so a refusal is kept in a bounded buffer and
the worker's housekeeping thread writes the buffer once a second, in one transaction.
When the buffer is full (a flood), further refusals are counted, not kept, and the count
is written with the next entry, so the log says how many it misses.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import Any

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.security.tables import AuditRow
from slipway.serving.gateway.asgi import Scope

CAPACITY = 1000


def template(path: str) -> str:
    """``path`` with its endpoint, model and version replaced by their parameter names."""
    if re.fullmatch(r"/endpoints/[^/]+/(invocations|explain)", path):
        return re.sub(r"^/endpoints/[^/]+/", "/endpoints/{endpoint}/", path)
    versioned = re.fullmatch(r"/v2/models/[^/]+/versions/[^/]+(/ready|/infer)?", path)
    if versioned:
        return "/v2/models/{model}/versions/{version}" + (versioned.group(1) or "")
    model = re.fullmatch(r"/v2/models/[^/]+(/ready|/infer)?", path)
    if model:
        return "/v2/models/{model}" + (model.group(1) or "")
    return path if len(path) <= 200 else path[:200]


class Denials:
    """Refusals waiting to be written to the audit log (thread-safe)."""

    def __init__(self, db: Database, *, capacity: int = CAPACITY) -> None:
        self._db = db
        self._capacity = capacity
        self._lock = threading.Lock()
        self._pending: deque[AuditRow] = deque()
        self._dropped = 0
        # Totals since the worker started, for its metrics.
        self.refused = 0
        self.dropped = 0

    def offer(self, scope: Scope, status: int, reason: str, actor: str | None) -> None:
        """Keep one refusal (called on the event loop: no I/O)."""
        path: str = scope["path"]
        client = scope.get("client")
        details: dict[str, Any] = {"client": client[0] if client else "?", "reason": reason}
        row = AuditRow(
            time=utcnow(),
            actor=(actor or "unauthenticated")[:255],
            action=f"gateway {scope['method']} {template(path)}",
            resource=path[:1024],
            outcome="denied",
            status_code=status,
            details=details,
        )
        with self._lock:
            self.refused += 1
            if len(self._pending) >= self._capacity:
                self._dropped += 1
                self.dropped += 1
                return
            self._pending.append(row)

    def flush(self) -> int:
        """Write what is kept in one transaction; returns how many entries."""
        with self._lock:
            rows = list(self._pending)
            self._pending.clear()
            dropped, self._dropped = self._dropped, 0
        if not rows:
            return 0
        if dropped:
            rows[-1].details = rows[-1].details | {"refusals_not_logged_before": dropped}
        try:
            with self._db.write() as session:
                session.add_all(rows)
        except Exception:
            with self._lock:  # keep them for the next flush, within the bound
                room = self._capacity - len(self._pending)
                self._pending.extendleft(reversed(rows[:room]))
                self._dropped += dropped + max(0, len(rows) - room)
            raise
        return len(rows)
