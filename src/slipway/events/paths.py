"""Addressing parts of an event by path, shared by triggers and alert rules.

A path is ``type``, ``resource``, ``id``, ``time`` or ``payload.a.b``; filters compare the
value at a path for equality, and alert rules build their de-duplication keys from them.
"""

from __future__ import annotations

import re
from typing import Any

from slipway.core.events import Event

# What a filter or key may name: the event's own fields, or a dotted path into its payload.
PATH = re.compile(r"(type|resource|id|time|payload(\.[^.\s]+)+)")


def lookup(event: Event, path: str) -> Any:
    """The value at ``path`` in ``event``, ``None`` when the payload has no such key."""
    if path in ("type", "resource", "id"):
        return getattr(event, path)
    if path == "time":
        return event.time.isoformat()
    value: Any = event.payload
    for part in path.removeprefix("payload.").split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def matches(filters: dict[str, Any], event: Event) -> bool:
    """True when every ``path: value`` in ``filters`` equals the event's value there."""
    return all(lookup(event, path) == value for path, value in filters.items())
