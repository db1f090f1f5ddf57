"""Waiting in tests: on a condition, with a deadline, never on time alone.

A test that sleeps "long enough" for something to happen fails when the machine is busy
and wastes time when it is idle. ``eventually`` polls the condition itself and fails with
the last value it saw when the deadline passes, so a slow run is only slower, and a
failure says what was still wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.02,
) -> T:
    """Call ``check`` until it returns a truthy value and return that value. An
    ``AssertionError`` raised by ``check`` counts as "not yet"; after ``timeout`` seconds
    the test fails naming ``what`` and the last result (or assertion) seen."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except AssertionError as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout:g} s (last: {last!r})")
        time.sleep(interval)


def settled(
    value: Callable[[], T],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.05,
    readings: int = 3,
) -> T:
    """Poll ``value`` until it returns the same result ``readings`` times in a row (work
    that runs off the request path has finished adding to it) and return it."""
    deadline = time.monotonic() + timeout
    seen: list[T] = []
    while True:
        seen = [*seen[-(readings - 1) :], value()] if readings > 1 else [value()]
        if len(seen) == readings and all(v == seen[0] for v in seen):
            return seen[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still changing after {timeout:g} s: {seen!r}")
        time.sleep(interval)
