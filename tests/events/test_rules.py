"""Alert rules as data: event-type patterns and de-duplication keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipway.core.events import Event
from slipway.events.rules import MAX_KEY_LENGTH, dedup_key, type_matches

EVENT = Event(
    id=7,
    type="monitor.violations",
    resource="monitor/x",
    payload={"endpoint": "flight-delay", "drifted": ["a", "b"], "nested": {"env": "prod"}},
    time=datetime(2026, 1, 1, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["monitor.violations"], "monitor.violations", True),
        (["monitor.*"], "monitor.violations", True),
        (["monitor.*"], "monitors.violations", False),
        (["*.job_failed"], "batch.job_failed", True),
        (["*.job_failed"], "training.job_completed", False),
        (["*"], "alert.delivery_failed", True),
        (["endpoint.rolled_back", "batch.*"], "batch.job_failed", True),
        (["a.b"], "a.b.c", False),
        (["a.*"], "a.b.c", True),
    ],
)
def test_event_type_patterns(patterns: list[str], event_type: str, expected: bool) -> None:
    assert type_matches(patterns, event_type) is expected


def test_dedup_keys() -> None:
    assert dedup_key(["resource"], EVENT) == "monitor/x"
    assert dedup_key(["payload.nested.env"], EVENT) == "prod"
    assert dedup_key(["type", "payload.endpoint"], EVENT) == (
        '["monitor.violations","flight-delay"]'
    )
    assert dedup_key(["payload.drifted"], EVENT) == '[["a","b"]]'
    assert dedup_key(["payload.missing"], EVENT) == "[null]"
    assert dedup_key([], EVENT) == "[]"
    long = Event(8, "x.y", "r/" + "z" * 300, {}, EVENT.time)
    key = dedup_key(["resource"], long)
    assert key.startswith("sha256:") and len(key) <= MAX_KEY_LENGTH
