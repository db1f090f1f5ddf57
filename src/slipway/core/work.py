"""What a work handler receives, and what it may raise.

A handler gets the claimed item and the hooks for liveness and cancellation — nothing
else: the services it needs are given to it once, when the platform is assembled
(:func:`slipway.workers.handlers.handlers`), so a capability names exactly what it uses
and never reaches for the whole platform.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slipway.core.errors import SlipwayError
from slipway.core.queue import WorkItem


@dataclass(frozen=True)
class WorkContext:
    """The item's payload and hooks for liveness and cancellation."""

    item_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    heartbeat: Callable[[], None]
    lease_lost: Callable[[], bool]

    @classmethod
    def of(
        cls,
        item: WorkItem,
        *,
        heartbeat: Callable[[], None],
        lease_lost: Callable[[], bool],
    ) -> WorkContext:
        """The context of a claimed ``item`` (a local worker's or a Ray task's)."""
        return cls(
            item_id=item.id,
            kind=item.kind,
            payload=item.payload,
            attempt=item.attempts,
            max_attempts=item.max_attempts,
            heartbeat=heartbeat,
            lease_lost=lease_lost,
        )


class PermanentFailure(SlipwayError):
    """Raised by a handler whose work must not be retried (its own retry budget is spent);
    a crash or a lost lease, by contrast, is always retried while attempts remain."""

    code = "permanent_failure"


Handler = Callable[[WorkContext], dict[str, Any] | None]
