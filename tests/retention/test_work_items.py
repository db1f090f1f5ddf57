"""Work items: old finished ones go; queued, claimed, and those an unfinished execution
or job still reads stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from slipway.core.clock import utcnow
from slipway.core.errors import NotFound
from slipway.core.queue import WorkQueue
from slipway.pipelines.tables import ExecutionRow, StepRunRow
from slipway.retention import GarbageCollector
from slipway.services import Services
from slipway.training.tables import TrainingJobRow

LATER = timedelta(days=60)


def _finished(queue: WorkQueue, *, fail: bool = False) -> int:
    item = queue.enqueue("steps", "step.run", {})
    claimed = queue.claim(["steps"], "w1")
    assert claimed is not None and claimed.id == item.id
    if fail:
        queue.fail(item.id, "w1", "boom", retry=False)
    else:
        queue.complete(item.id, "w1")
    return item.id


def test_old_finished_items_go_and_needed_ones_stay(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    queue = services.queue
    done = [_finished(queue) for _ in range(3)]
    failed = _finished(queue, fail=True)
    cancelled = queue.cancel(queue.enqueue("steps", "step.run", {}).id).id
    in_running_execution = _finished(queue)
    in_running_job = _finished(queue, fail=True)
    deduped = queue.enqueue("steps", "step.run", {}, dedupe_key="once")
    queue.cancel(deduped.id)
    running = queue.enqueue("steps", "step.run", {})
    assert queue.claim(["steps"], "w2") is not None  # claimed: a job is running it
    queued = queue.enqueue("steps", "step.run", {}).id
    now = utcnow()
    with services.db.write() as session:
        session.add(
            ExecutionRow(
                id="e1", pipeline="p", target="m:f", graph={}, parameters={}, state="Running",
                trigger={}, created_at=now,
            )
        )  # fmt: skip
        session.add(
            StepRunRow(
                execution_id="e1", step="prepare", state="Succeeded",
                work_item_id=in_running_execution,
            )
        )  # fmt: skip
        session.add(
            TrainingJobRow(
                name="job", spec={}, state="Running", work_item_id=in_running_job, created_at=now
            )
        )

    # Recent items are not old yet.
    assert collector(work_items_days=30).run().kind("work_items").deleted == 0
    dry = collector(work_items_days=30).run(dry_run=True, now=now + LATER).kind("work_items")
    assert dry.deleted == 5 and queue.get(done[0]).id == done[0]

    report = collector(work_items_days=30).run(now=now + LATER).kind("work_items")

    assert report.deleted == 5 and report.protected == 3
    for gone in [*done, failed, cancelled]:
        with pytest.raises(NotFound):
            queue.get(gone)
    kept = [in_running_execution, in_running_job, deduped.id, running.id, queued]
    assert [queue.get(i).id for i in kept] == kept
    assert queue.get(running.id).state == "claimed" and queue.get(queued).state == "queued"
    # The deduplicated item still answers its key: the same work is not queued twice.
    assert queue.enqueue("steps", "step.run", {}, dedupe_key="once").id == deduped.id


def test_items_of_a_finished_execution_go_in_batches(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    queue = services.queue
    items = [_finished(queue) for _ in range(7)]
    with services.db.write() as session:
        session.add(
            ExecutionRow(
                id="e2", pipeline="p", target="m:f", graph={}, parameters={},
                state="Succeeded", trigger={}, created_at=utcnow(),
            )
        )  # fmt: skip
        session.add(
            StepRunRow(execution_id="e2", step="s", state="Succeeded", work_item_id=items[0])
        )
    gc = collector(work_items_days=1, batch_size=2)
    assert gc.run(now=utcnow() + LATER).kind("work_items").deleted == 7
    assert queue.list() == []
