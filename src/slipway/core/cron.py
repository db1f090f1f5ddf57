"""Cron expressions evaluated in a time zone: when a schedule fires next, in UTC."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from slipway.core.errors import InvalidInput


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", field="timezone") from None


def next_after(cron: str, timezone: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after``, in UTC."""
    start = after.astimezone(_zone(timezone))
    value: datetime = croniter(cron, start).get_next(datetime)
    return value.astimezone(ZoneInfo("UTC"))
