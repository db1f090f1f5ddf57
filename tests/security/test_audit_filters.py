"""AuditLog.list's filters: a resource substring (wildcards taken literally) and a time
range, alone and with the others, on each database engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slipway.core.db import Database
from slipway.security.audit import AuditLog


def _entries(log: AuditLog) -> list[tuple[str, str]]:
    return [(e.actor, e.resource) for e in log.list()]


def test_resource_filter_is_a_literal_substring(db: Database) -> None:
    log = AuditLog(db)
    for actor, resource in [
        ("a", "model/fraud_model/1"),
        ("b", "model/fraudXmodel/1"),
        ("a", "endpoint/100%-api"),
        ("c", "workspaces/fraud/model/m/1"),
    ]:
        log.changed(actor, "thing.change", resource)
    assert [e.resource for e in log.list(resource="fraud_")] == ["model/fraud_model/1"]
    assert [e.resource for e in log.list(resource="100%")] == ["endpoint/100%-api"]
    assert [e.resource for e in log.list(resource="fraud", actor="c")] == [
        "workspaces/fraud/model/m/1"
    ]
    # Within the workspace rule: the default workspace's entries only.
    assert [e.resource for e in log.list(resource="fraud", workspaces=["default"])] == [
        "model/fraudXmodel/1",
        "model/fraud_model/1",
    ]
    assert log.list(resource="nothing-like-it") == []


def test_time_range_keeps_entries_from_since_until_before_until(db: Database) -> None:
    log = AuditLog(db)
    early = log.changed("t", "thing.change", "thing/early")
    middle = log.changed("t", "thing.change", "thing/middle")
    late = log.changed("t", "thing.change", "thing/late")
    assert early.time <= middle.time <= late.time
    since = [e.resource for e in log.list(since=middle.time)]
    assert since == ["thing/late", "thing/middle"]  # at or after
    until = [e.resource for e in log.list(until=middle.time)]
    assert "thing/middle" not in until and until[-1] == "thing/early"  # strictly before
    both = log.list(since=middle.time, until=late.time + timedelta(seconds=1), before=late.id)
    assert [e.resource for e in both] == ["thing/middle"]
    # A naive time is UTC, as Slipway stores every time.
    naive = middle.time.astimezone(UTC).replace(tzinfo=None)
    assert [e.resource for e in log.list(since=naive)] == since
    # The same instant in another offset is the same filter.
    shifted = middle.time.astimezone(datetime.now().astimezone().tzinfo)
    assert [e.resource for e in log.list(since=shifted)] == since
    assert log.list(until=datetime(2000, 1, 1, tzinfo=UTC)) == []
