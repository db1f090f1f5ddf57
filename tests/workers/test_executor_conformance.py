"""The executor conformance suite: the queue's rules, checked over every executor.

Each test runs the one claim-lease-heartbeat loop (:class:`WorkLoop`) with one executor —
the local one (handlers on threads of this process) and the Ray one (tasks on the
session's Ray head) — on the same items, and checks what the queue ends up saying. A new
executor passes the same suite. What differs between them is only how a run is stopped
and which process dies in a crash, and the two harnesses below say so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from slipway.core.clock import utcnow
from slipway.core.db.tables import WorkItemRow
from slipway.core.errors import Conflict
from slipway.core.queue import FINAL_STATES, WorkItem, WorkQueue, WorkState
from slipway.core.settings import load_settings
from slipway.services import Services
from slipway.workers.executor import Executor, Lease, Outcome
from slipway.workers.handlers import handlers
from slipway.workers.local import LocalExecutor
from slipway.workers.loop import Finished, WorkLoop
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
CAPACITY = 2
WAIT = 120.0
"""Deadline of every wait: generous, as a Ray worker process may have to start first."""
BLOCK = {"sleep": 600, "heed_lease": True}
"""An item that runs until it is stopped (it heeds its lease, as real handlers do)."""


class Counting:
    """An executor that counts the loop's turns (its calls to ``wait``): each turn tries
    to claim before it waits, so two turns show what the loop left unclaimed."""

    def __init__(self, inner: Executor[Any]) -> None:
        self.inner = inner
        self.turns = 0

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    @property
    def kinds(self) -> Collection[str]:
        return self.inner.kinds

    def open(self) -> None:
        self.inner.open()

    def submit(self, item: WorkItem, lease: Lease) -> Any:
        return self.inner.submit(item, lease)

    def poll(self, run: Any) -> Outcome | None:
        return self.inner.poll(run)

    def wait(self, runs: Sequence[Any], timeout: float) -> None:
        self.inner.wait(runs, timeout)
        self.turns += 1

    def cancel(self, run: Any) -> None:
        self.inner.cancel(run)

    def close(self) -> None:
        self.inner.close()


class Harness(ABC):
    """A platform on a fresh database and loops over one kind of executor."""

    def __init__(self, services: Services, tmp_path: Path) -> None:
        self.services = services
        self.queue: WorkQueue = services.queue
        self.tmp_path = tmp_path

    @abstractmethod
    def executor(self) -> Executor[Any]:
        """A new executor of this kind, with room for ``CAPACITY`` runs."""

    def loop(self, worker_id: str) -> WorkLoop[Any]:
        return WorkLoop(
            self.services, Counting(self.executor()), queues=["system"], worker_id=worker_id
        )

    @contextmanager
    def running(self, loop: WorkLoop[Any]) -> Iterator[WorkLoop[Any]]:
        """``loop.run()`` on a thread for the block; then every item still open is
        cancelled (so nothing runs on into the next test) and the loop waited for."""
        loop.executor.open()  # from this thread, as the CLI does
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        try:
            yield loop
        finally:
            for item in self.queue.list(limit=1000):
                if item.state not in FINAL_STATES:
                    with contextlib.suppress(Conflict):
                        self.queue.cancel(item.id)
            loop.stopping.set()
            thread.join(timeout=WAIT)
            assert not thread.is_alive(), "the loop did not stop"

    @abstractmethod
    def crash_while_running(self, item: WorkItem) -> contextlib.AbstractContextManager[str]:
        """Kill the process running ``item`` once it runs; yields the worker id that
        should hold it next, while that worker runs."""


class LocalHarness(Harness):
    """Handlers on threads of the worker process: a crash is the worker's."""

    def executor(self) -> Executor[Any]:
        return LocalExecutor(handlers(self.services), capacity=CAPACITY)

    @contextmanager
    def crash_while_running(self, item: WorkItem) -> Iterator[str]:
        with self._worker_process("victim") as victim:
            eventually(lambda: self._holder(item) == "victim", what="the claim", timeout=WAIT)
            victim.kill()
            victim.wait()
        with self.running(self.loop("survivor")):
            yield "survivor"

    def _holder(self, item: WorkItem) -> str | None:
        return self.queue.get(item.id).lease_owner

    @contextmanager
    def _worker_process(self, worker_id: str) -> Iterator[subprocess.Popen[bytes]]:
        settings = self.services.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
        env |= settings.as_env() | {
            "SLIPWAY_CONFIG": str(self.tmp_path / "none.yaml"),
            "SLIPWAY_WORKERS__LEASE_SECONDS": str(settings.workers.lease_seconds),
            "SLIPWAY_WORKERS__POLL_SECONDS": str(settings.workers.poll_seconds),
            "PYTHONPATH": str(REPO),
        }
        with (self.tmp_path / f"{worker_id}.log").open("ab") as log:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "slipway",
                    "worker",
                    *("--queue", "system"),
                    "--id",
                    worker_id,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            yield child
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


class RayHarness(Harness):
    """Ray tasks on the session's head: a crash is the task's worker process's."""

    def __init__(
        self, services: Services, tmp_path: Path, address: str, head: psutil.Process
    ) -> None:
        super().__init__(services, tmp_path)
        self.address = address
        self.head = head

    def executor(self) -> Executor[Any]:
        from slipway.workers.ray_executor import RayExecutor  # imports Ray: only here

        return RayExecutor(
            self.services.settings,
            self.services.db,
            address=self.address,
            max_in_flight=CAPACITY,
        )

    @contextmanager
    def crash_while_running(self, item: WorkItem) -> Iterator[str]:
        with self.running(self.loop("driver")):
            eventually(
                lambda: self.queue.get(item.id).lease_owner == "driver",
                what="the claim",
                timeout=WAIT,
            )
            task = eventually(lambda: self._task_process(item), what="the task", timeout=WAIT)
            task.send_signal(signal.SIGKILL)
            yield "driver"

    def _task_process(self, item: WorkItem) -> psutil.Process | None:
        """The Ray worker process running ``item``'s task: Ray titles it after the task
        (``ray::slipway system.echo ID``) while it runs."""
        title = f"slipway {item.kind} {item.id}"
        for process in self.head.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(title in part for part in process.cmdline()):
                    return process
        return None


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    address = request.getfixturevalue("ray_head") if request.param == "ray" else None
    settings = load_settings(
        home=tmp_path / "home",
        database={"url": f"sqlite:///{tmp_path / 'meta.db'}"},
        workers={"lease_seconds": 1.5, "poll_seconds": 0.05},
        **({"ray": {"address": address}} if address else {}),
    )
    services = Services.open(settings)
    try:
        if address is None:
            yield LocalHarness(services, tmp_path)
        else:
            head = request.getfixturevalue("ray_head_process")
            yield RayHarness(services, tmp_path, address, head)
    finally:
        services.close()


def _ended(queue: WorkQueue, item: WorkItem) -> WorkItem | None:
    current = queue.get(item.id)
    return current if current.state in FINAL_STATES else None


def _records(loop: WorkLoop[Any], item: WorkItem) -> list[Finished]:
    return [f for f in loop.finished if f.item_id == item.id]


def _claimed(queue: WorkQueue, worker_id: str) -> list[WorkItem]:
    return [
        i for i in queue.list(state=WorkState.CLAIMED, limit=1000) if i.lease_owner == worker_id
    ]


def _held_by(
    queue: WorkQueue, item: WorkItem, worker_id: str, attempt: int = 1
) -> Callable[[], bool]:
    def check() -> bool:
        current = queue.get(item.id)
        return (current.state, current.lease_owner, current.attempts) == (
            WorkState.CLAIMED,
            worker_id,
            attempt,
        )

    return check


def test_an_item_that_succeeds_completes_with_its_result(harness: Harness) -> None:
    queue = harness.queue
    with harness.running(harness.loop("w")) as loop:
        item = queue.enqueue("system", "system.echo", {"hello": "world"})
        done = eventually(lambda: _ended(queue, item), what="the item's end", timeout=WAIT)
        eventually(lambda: _records(loop, item), what="the run's record")
    assert (done.state, done.attempts) == (WorkState.SUCCEEDED, 1)
    assert done.result == {"echo": {"hello": "world"}, "attempt": 1}
    [record] = _records(loop, item)
    assert record.state == "succeeded" and record.pid is not None


def test_a_failing_item_fails_with_its_error_after_its_retries(harness: Harness) -> None:
    queue = harness.queue
    with harness.running(harness.loop("w")) as loop:
        item = queue.enqueue(
            "system", "system.echo", {"fail": "bad data"}, max_attempts=2, backoff_seconds=0
        )
        unknown = queue.enqueue("system", "no.such_kind", {}, max_attempts=5)
        failed = eventually(lambda: _ended(queue, item), what="the item's end", timeout=WAIT)
        refused = eventually(lambda: _ended(queue, unknown), what="the refusal", timeout=WAIT)
    assert (failed.state, failed.attempts, failed.result) == (WorkState.FAILED, 2, None)
    assert "Traceback" in (failed.last_error or "")
    assert "RuntimeError: bad data" in (failed.last_error or "")
    assert [r.state for r in _records(loop, item)] == ["failed", "failed"]
    assert (refused.state, refused.attempts) == (WorkState.FAILED, 1)  # not retried
    assert "no handler for kind 'no.such_kind'" in (refused.last_error or "")


def test_cancelling_a_running_item_stops_it_and_frees_its_slot(harness: Harness) -> None:
    queue = harness.queue
    with harness.running(harness.loop("w")) as loop:
        running = [queue.enqueue("system", "system.echo", BLOCK) for _ in range(CAPACITY)]
        for item in running:
            eventually(_held_by(queue, item, "w"), what="the claim", timeout=WAIT)
        queue.cancel(running[0].id)
        # A record is written only once the executor says the run has ended.
        [record] = eventually(lambda: _records(loop, running[0]), what="the stop", timeout=WAIT)
        assert record.state in ("cancelled", "discarded")
        after = queue.enqueue("system", "system.echo", {"n": 1})
        done = eventually(lambda: _ended(queue, after), what="the next item", timeout=WAIT)
        assert done.state is WorkState.SUCCEEDED
        assert _held_by(queue, running[1], "w")()  # the other run went on
    cancelled = queue.get(running[0].id)
    assert (cancelled.state, cancelled.result) == (WorkState.CANCELLED, None)


def test_a_lost_lease_discards_the_run_and_its_new_holder_wins(harness: Harness) -> None:
    queue = harness.queue
    with harness.running(harness.loop("w")) as loop:
        item = queue.enqueue("system", "system.echo", BLOCK)
        eventually(_held_by(queue, item, "w"), what="the claim", timeout=WAIT)
        # What a lease that ran out and was claimed again by another worker looks like.
        with harness.services.db.write() as session:
            row = session.get(WorkItemRow, item.id)
            assert row is not None
            row.lease_owner, row.attempts = "thief", row.attempts + 1
            row.lease_expires_at = utcnow() + timedelta(seconds=600)
        [record] = eventually(lambda: _records(loop, item), what="the stop", timeout=WAIT)
        assert record.state in ("cancelled", "discarded")
        assert _held_by(queue, item, "thief", attempt=2)()  # the loop wrote nothing
        queue.complete(item.id, "thief", {"by": "thief"})
    done = queue.get(item.id)
    assert (done.state, done.attempts, done.result) == (WorkState.SUCCEEDED, 2, {"by": "thief"})


def test_no_more_items_run_at_once_than_the_capacity(harness: Harness) -> None:
    queue = harness.queue
    loop = harness.loop("w")
    counting = loop.executor
    assert isinstance(counting, Counting)
    with harness.running(loop):
        running = [queue.enqueue("system", "system.echo", BLOCK) for _ in range(CAPACITY)]
        for item in running:
            eventually(_held_by(queue, item, "w"), what="the claim", timeout=WAIT)
        extra = queue.enqueue("system", "system.echo", BLOCK)
        seen = counting.turns
        eventually(lambda: counting.turns >= seen + 2, what="two turns of the loop")
        assert queue.get(extra.id).state is WorkState.QUEUED
        assert len(_claimed(queue, "w")) == CAPACITY == loop.in_flight
        queue.cancel(running[0].id)
        eventually(_held_by(queue, extra, "w"), what="the extra item's claim", timeout=WAIT)
        assert len(_claimed(queue, "w")) == CAPACITY


@pytest.mark.slow
@pytest.mark.parametrize("max_attempts", [1, 2])
def test_an_item_whose_process_dies_is_retried_or_failed_by_the_queue(
    harness: Harness, max_attempts: int
) -> None:
    queue = harness.queue
    item = queue.enqueue(
        "system", "system.echo", BLOCK, max_attempts=max_attempts, backoff_seconds=0
    )
    with harness.crash_while_running(item) as next_holder:
        if max_attempts > 1:
            retry = _held_by(queue, item, next_holder, attempt=2)
            eventually(retry, what="the second attempt's claim", timeout=WAIT)
            assert queue.get(item.id).result is None
        else:
            failed = eventually(lambda: _ended(queue, item), what="the failure", timeout=WAIT)
            assert (failed.state, failed.attempts, failed.result) == (WorkState.FAILED, 1, None)
            assert failed.last_error
