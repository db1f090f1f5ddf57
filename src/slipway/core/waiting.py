"""Waiting for a resource to reach a final state, the one polling loop every service uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TypeVar

T = TypeVar("T")


def wait_until_final(
    fetch: Callable[[], T],
    state: Callable[[T], str],
    final: Collection[str],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
) -> T:
    """Re-read with ``fetch`` until ``state`` of it is in ``final``; ``TimeoutError``
    (naming ``what`` and its last state) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        current = fetch()
        if state(current) in final:
            return current
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} still {state(current)} after {timeout:g} s")
        time.sleep(interval)
