"""Waiting for a resource to reach a final state, the one polling loop every service uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TypeVar

from slipway.core.progress import reporting

T = TypeVar("T")


def wait_until_final(
    fetch: Callable[[], T],
    state: Callable[[T], str],
    final: Collection[str],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
    progress: bool | None = None,
) -> T:
    """Re-read with ``fetch`` until ``state`` of it is in ``final``; ``TimeoutError``
    (naming ``what`` and its last state) after ``timeout`` seconds.

    Where a person watches (a terminal, a notebook; ``progress`` overrides) a live line
    shows ``what``, its state and the time so far: every wait of the platform, embedded or
    remote, goes through here."""
    deadline = time.monotonic() + timeout
    with reporting(f"waiting for {what}", progress=progress) as report:
        while True:
            current = fetch()
            now = state(current)
            report.update(now)
            if now in final:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} still {now} after {timeout:g} s")
            time.sleep(interval)
