"""What a work handler receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slipway.core.errors import SlipwayError

if TYPE_CHECKING:
    from slipway.core.queue import WorkItem
    from slipway.services import Services


@dataclass(frozen=True)
class WorkContext:
    """The item's payload, the platform, and hooks for liveness and cancellation."""

    item_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    services: Services
    heartbeat: Callable[[], None]
    lease_lost: Callable[[], bool]

    @classmethod
    def of(
        cls,
        item: WorkItem,
        services: Services,
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
            services=services,
            heartbeat=heartbeat,
            lease_lost=lease_lost,
        )


class PermanentFailure(SlipwayError):
    """Raised by a handler whose work must not be retried (its own retry budget is spent);
    a crash or a lost lease, by contrast, is always retried while attempts remain."""

    code = "permanent_failure"


Handler = Callable[[WorkContext], dict[str, Any] | None]
