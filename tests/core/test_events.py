"""The events outbox: ordered appends, filtered reads, durable subscriber cursors."""

from __future__ import annotations

import threading

import pytest

from slipway.core.db import Database
from slipway.core.errors import InvalidInput
from slipway.core.events import EventLog


def test_append_and_read_in_order(db: Database) -> None:
    log = EventLog(db)
    first = log.append("endpoint.created", "endpoint/a", {"n": 1})
    second = log.append("endpoint.status_changed", "endpoint/a", {"status": "InService"})
    assert first.id < second.id
    assert first.time.tzinfo is not None
    events = log.read()
    assert [(e.type, e.payload) for e in events] == [
        ("endpoint.created", {"n": 1}),
        ("endpoint.status_changed", {"status": "InService"}),
    ]
    assert log.read(after=first.id) == [second]
    assert log.read(types=["endpoint.created"]) == [first]
    assert log.last_id() == second.id


def test_recent_gives_the_newest_first_of_a_workspace(db: Database) -> None:
    log = EventLog(db)
    ours = [log.append("model.registered", f"model/m/{n}", {}) for n in range(5)]
    theirs = log.append("model.registered", "workspaces/fraud/model/m/1", {})
    assert log.recent(3) == [theirs, ours[4], ours[3]]
    assert log.recent(3, workspace="default") == [ours[4], ours[3], ours[2]]
    assert log.recent(3, workspace="fraud") == [theirs]
    assert log.recent(3, workspace="fr%") == []  # a pattern is a name, not a wildcard


def test_append_in_callers_transaction_rolls_back_with_it(db: Database) -> None:
    log = EventLog(db)
    with pytest.raises(RuntimeError), db.session() as session:
        log.append("model.approved", "model/m/1", session=session)
        raise RuntimeError("the change failed")
    assert log.read() == []


@pytest.mark.parametrize(
    ("kind", "resource", "payload", "field"),
    [
        ("Bad Type", "x", {}, "type"),
        ("nodots", "x", {}, "type"),
        ("a.b", "", {}, "resource"),
        ("a.b", "x", {"v": float("nan")}, "payload"),
        ("a.b", "x", {"v": object()}, "payload"),
    ],
)
def test_bad_events_are_refused(
    db: Database, kind: str, resource: str, payload: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        EventLog(db).append(kind, resource, payload)
    assert info.value.field == field
    assert EventLog(db).read() == []


def test_subscription_cursor_is_durable(db: Database) -> None:
    log = EventLog(db)
    ids = [log.append("drift.detected", f"monitor/m{i}").id for i in range(5)]
    sub = log.subscription("retrainer")
    assert [e.id for e in sub.poll(limit=2)] == ids[:2]
    sub.ack(ids[1])
    again = EventLog(db).subscription("retrainer")
    assert [e.id for e in again.poll()] == ids[2:]
    again.ack(ids[0])  # backwards: ignored
    assert again.position == ids[1]
    other = log.subscription("console")
    assert other.position == 0
    with pytest.raises(InvalidInput):
        log.subscription("Not A Name")


def test_concurrent_appends_are_read_without_gaps(db: Database) -> None:
    """Readers polling while writers append never skip an event (ids commit in order)."""
    log = EventLog(db)
    per_thread, threads = 25, 4
    seen: list[int] = []
    done = threading.Event()

    def reader() -> None:
        position = 0
        while True:
            finished = done.is_set()
            for event in log.read(after=position, limit=1000):
                seen.append(event.id)
                position = event.id
            if finished:
                return

    def writer(n: int) -> None:
        for i in range(per_thread):
            log.append("data.ingested", f"group/g{n}", {"i": i})

    watcher = threading.Thread(target=reader)
    watcher.start()
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    watcher.join()
    assert len(seen) == per_thread * threads
    assert seen == sorted(seen)
    assert seen == [e.id for e in log.read(limit=1000)]
