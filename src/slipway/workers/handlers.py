"""What a worker knows how to run: a table from work-item kind to handler.

Capabilities register their handlers here explicitly as they land (pipeline steps,
training jobs, trials, batch chunks, monitor runs), so an unknown kind is found by a test,
not at run time in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slipway.services import Services


@dataclass(frozen=True)
class WorkContext:
    """What a handler gets: the item's payload, the platform, and a liveness hook."""

    item_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    services: Services
    heartbeat: Callable[[], None]


Handler = Callable[[WorkContext], dict[str, Any] | None]


def _echo(context: WorkContext) -> dict[str, Any]:
    """The pool's self-test: returns its payload, optionally after ``sleep`` seconds."""
    time.sleep(float(context.payload.get("sleep", 0)))
    if context.payload.get("fail"):
        raise RuntimeError(str(context.payload["fail"]))
    return {"echo": context.payload, "attempt": context.attempt}


HANDLERS: dict[str, Handler] = {
    "system.echo": _echo,
}

# The queues a default worker serves; capabilities add theirs as they land.
DEFAULT_QUEUES: tuple[str, ...] = ("system",)
