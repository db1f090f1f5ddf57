"""The work queue: exclusive claims across processes, leases, retries, cancel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from slipway.core.db import Database
from slipway.core.errors import Conflict, InvalidInput, LeaseLost, NotFound
from slipway.core.queue import WorkQueue, WorkState
from tests.waiting import eventually

CLAIMER = """
import json, sys
from slipway.core.db import Database
from slipway.core.queue import WorkQueue
db = Database(sys.argv[1])
queue = WorkQueue(db)
got = []
while (item := queue.claim(["steps"], sys.argv[2], lease_seconds=60)) is not None:
    got.append(item.id)
    queue.complete(item.id, sys.argv[2], {"by": sys.argv[2]})
print(json.dumps(got))
"""

HOLDER = """
import sys, time
from slipway.core.db import Database
from slipway.core.queue import WorkQueue
item = WorkQueue(Database(sys.argv[1])).claim(["steps"], "doomed", lease_seconds=3.0)
print(item.id, flush=True)
time.sleep(600)
"""


def test_enqueue_claim_complete(db: Database) -> None:
    queue = WorkQueue(db)
    item = queue.enqueue("steps", "pipeline.step", {"step": "train"})
    assert item.state is WorkState.QUEUED
    claimed = queue.claim(["steps"], "w1")
    assert claimed is not None
    assert (claimed.id, claimed.state, claimed.attempts) == (item.id, WorkState.CLAIMED, 1)
    assert claimed.lease_owner == "w1"
    assert queue.claim(["steps"], "w2") is None
    done = queue.complete(item.id, "w1", {"rows": 3})
    assert done.state is WorkState.SUCCEEDED
    assert queue.get(item.id).result == {"rows": 3}


def test_priority_then_fifo_and_queue_filter(db: Database) -> None:
    queue = WorkQueue(db)
    low = queue.enqueue("steps", "k", {"n": 1})
    high = queue.enqueue("steps", "k", {"n": 2}, priority=5)
    low2 = queue.enqueue("steps", "k", {"n": 3})
    other = queue.enqueue("trials", "k", {"n": 4}, priority=9)
    order = [queue.claim(["steps"], "w") for _ in range(3)]
    assert [i.id for i in order if i] == [high.id, low.id, low2.id]
    trial = queue.claim(["steps", "trials"], "w")
    assert trial is not None and trial.id == other.id


def test_dedupe_key_makes_enqueue_idempotent(db: Database) -> None:
    queue = WorkQueue(db)
    first = queue.enqueue("batch", "chunk", {"n": 1}, dedupe_key="job-1/chunk-0")
    again = queue.enqueue("batch", "chunk", {"n": 1}, dedupe_key="job-1/chunk-0")
    assert again.id == first.id
    assert len(queue.list(queue="batch")) == 1


def test_retries_with_backoff_stop_after_the_limit(db: Database) -> None:
    queue = WorkQueue(db)
    item = queue.enqueue("steps", "k", {}, max_attempts=3, backoff_seconds=0.2)
    delays = []
    for attempt in range(1, 4):
        claimed = None
        deadline = time.monotonic() + 5
        while claimed is None and time.monotonic() < deadline:
            claimed = queue.claim(["steps"], "w")
            time.sleep(0.02)
        assert claimed is not None and claimed.attempts == attempt
        failed = queue.fail(item.id, "w", f"boom {attempt}")
        if attempt < 3:
            assert failed.state is WorkState.QUEUED
            delays.append((failed.available_at - failed.updated_at).total_seconds())
            assert queue.claim(["steps"], "w") is None  # not before the backoff
    assert delays == pytest.approx([0.2, 0.4], abs=0.01)
    final = queue.get(item.id)
    assert final.state is WorkState.FAILED
    assert final.last_error == "boom 3"
    assert queue.claim(["steps"], "w") is None


def test_fail_without_retry_is_final(db: Database) -> None:
    queue = WorkQueue(db)
    item = queue.enqueue("steps", "k", {}, max_attempts=5)
    assert queue.claim(["steps"], "w") is not None
    assert queue.fail(item.id, "w", "user code error", retry=False).state is WorkState.FAILED


def test_expired_lease_is_reclaimed_and_fences_the_old_holder(db: Database) -> None:
    queue = WorkQueue(db)
    item = queue.enqueue("steps", "k", {})
    assert queue.claim(["steps"], "old", lease_seconds=1.0) is not None
    assert queue.claim(["steps"], "new") is None
    taken = eventually(lambda: queue.claim(["steps"], "new"), what="the expired lease is reclaimed")
    assert taken.attempts == 2 and taken.lease_owner == "new"
    with pytest.raises(LeaseLost):
        queue.heartbeat(item.id, "old")
    with pytest.raises(LeaseLost):
        queue.complete(item.id, "old")
    queue.heartbeat(item.id, "new", lease_seconds=60)
    assert queue.complete(item.id, "new").state is WorkState.SUCCEEDED


def test_heartbeat_keeps_the_lease(db: Database) -> None:
    queue = WorkQueue(db)
    item = queue.enqueue("steps", "k", {})
    assert queue.claim(["steps"], "w", lease_seconds=1.0) is not None
    started = time.monotonic()
    while time.monotonic() - started < 2.5:  # well past the first lease
        time.sleep(0.1)  # the holder's heartbeat interval (the work being simulated)
        queue.heartbeat(item.id, "w", lease_seconds=1.0)
        assert queue.claim(["steps"], "thief") is None


def test_expired_lease_on_last_attempt_fails_the_item(db: Database) -> None:
    queue = WorkQueue(db)
    item = queue.enqueue("steps", "k", {}, max_attempts=1)
    assert queue.claim(["steps"], "w", lease_seconds=0.1) is not None
    eventually(
        lambda: (
            queue.claim(["steps"], "w2") is None and queue.get(item.id).state is WorkState.FAILED
        ),
        what="the expired last attempt fails the item",
    )
    final = queue.get(item.id)
    assert final.state is WorkState.FAILED
    assert "expired" in (final.last_error or "")


def test_cancel(db: Database) -> None:
    queue = WorkQueue(db)
    queued = queue.enqueue("steps", "k", {})
    running = queue.enqueue("steps", "k", {})
    assert queue.cancel(queued.id).state is WorkState.CANCELLED
    claimed = queue.claim(["steps"], "w")
    assert claimed is not None and claimed.id == running.id
    queue.cancel(running.id)
    with pytest.raises(LeaseLost):
        queue.heartbeat(running.id, "w")
    with pytest.raises(Conflict):
        queue.cancel(running.id)
    with pytest.raises(NotFound):
        queue.cancel(10_000)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"queue": "Bad Queue"}, "queue"),
        ({"payload": {"x": float("inf")}}, "payload"),
        ({"payload": {"x": b"bytes"}}, "payload"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_bad_enqueue_is_refused_and_writes_nothing(
    db: Database, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"queue": "steps", "kind": "k", "payload": {}} | kwargs
    with pytest.raises(InvalidInput) as info:
        WorkQueue(db).enqueue(**args)  # type: ignore[arg-type]
    assert info.value.field == field
    assert WorkQueue(db).list() == []


@pytest.mark.slow
def test_concurrent_worker_processes_never_share_an_item(db: Database) -> None:
    queue = WorkQueue(db)
    ids = {queue.enqueue("steps", "k", {"n": n}).id for n in range(120)}
    url = db.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, url, f"worker-{n}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    first, second = (set(r) for r in results)
    assert first.isdisjoint(second)
    assert first | second == ids
    assert sum(len(r) for r in results) == len(ids)
    assert all(item.attempts == 1 for item in queue.list(limit=200))


@pytest.mark.slow
def test_item_of_a_killed_worker_is_reclaimed_after_lease_expiry(db: Database) -> None:
    queue = WorkQueue(db)
    item = queue.enqueue("steps", "k", {})
    url = db.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert int(holder.stdout.readline()) == item.id
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    holder.stdout.close()
    assert queue.claim(["steps"], "survivor") is None  # lease still running
    held = queue.get(item.id)
    assert held.lease_expires_at is not None
    taken = eventually(
        lambda: queue.claim(["steps"], "survivor"), what="the dead holder's item is reclaimed"
    )
    assert taken.id == item.id and taken.attempts == 2
    assert held.lease_expires_at - held.updated_at <= timedelta(seconds=3.01)
