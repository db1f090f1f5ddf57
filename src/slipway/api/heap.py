"""Keeping the control plane's long-lived objects out of Python's full garbage collections.

The process holds hundreds of thousands of objects that live as long as it does (MLflow,
SQLAlchemy, pandas, the templates, the caches its first requests fill); a full collection
walks all of them — 50-180 ms on a small machine — in whichever request is allocating when
it falls due, which is what put console pages over their 50 ms p99 (BENCHMARKS.md,
console). :func:`gc.freeze` moves what exists into a generation the collector ignores.
Freezing once at start-up misses what the first requests load lazily, so the heap is
frozen again after the 16th, 64th, 256th, 1024th and 4096th request's answer — there
without a collection first, which would itself be the full pass being avoided (a freeze
alone only moves lists): by then the process has its working set, and what a freeze keeps
of the garbage of that moment is bounded by five moments' worth.
"""

from __future__ import annotations

import gc
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

# After how many requests the heap is frozen again.
FREEZE_AFTER = (16, 64, 256, 1024, 4096)


def freeze() -> None:
    """Collect what is garbage now, then freeze the rest out of later full passes."""
    gc.collect()
    gc.freeze()


class FreezeLongLived:
    """ASGI middleware freezing the heap after :data:`FREEZE_AFTER` requests."""

    def __init__(self, app: ASGIApp, *, after: tuple[int, ...] = FREEZE_AFTER) -> None:
        self.app = app
        self.after = frozenset(after)
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        try:
            await self.app(scope, receive, send)
        finally:
            if self.requests in self.after:
                gc.freeze()  # no collection: moving the generations is cheap
                frozen = gc.get_freeze_count()
                log.debug("froze %d objects after %d requests", frozen, self.requests)
