"""TrainingService without a worker: reconciling a job whose work item gave up."""

from __future__ import annotations

from datetime import timedelta

from slipway.core.clock import utcnow
from slipway.core.db import Database
from slipway.core.events import EventLog
from slipway.core.queue import WorkQueue
from slipway.training.service import TrainingService
from slipway.training.spec import QUEUE
from tests.sqlite_writer import committing, repeat


def _given_up_job(db: Database, name: str) -> TrainingService:
    """A job whose work item failed for good (its workers kept dying) but which still
    says Pending: the next get() fails it."""
    queue = WorkQueue(db)
    training = TrainingService(db, queue, EventLog(db))
    training.submit({"name": name, "function": "math:sqrt"})
    item = queue.claim([QUEUE], "dead-worker")
    assert item is not None
    queue.fail(item.id, "dead-worker", "the worker died", retry=False)
    return training


def test_get_fails_a_job_whose_work_item_gave_up(db: Database) -> None:
    training = _given_up_job(db, "doomed")
    job = training.get("doomed")
    assert job.state == "Failed" and job.error == "the worker died"
    assert job.finished_at is not None
    assert training.get("doomed").state == "Failed"


def test_get_reconciles_while_another_connection_commits(
    sqlite_db: Database, sqlite_url: str
) -> None:
    """get() reads the job, then may fail it: on SQLite that must be a write transaction
    from the start, or a commit by anyone else in between fails it ("database is
    locked"). Here a second connection keeps reviving the job, so get() keeps failing it
    again while commits land."""
    training = _given_up_job(sqlite_db, "doomed")
    reconciled = 0

    def get() -> None:
        nonlocal reconciled
        start = utcnow() - timedelta(microseconds=1)
        job = training.get("doomed")
        assert job.state == "Failed" and job.finished_at is not None
        reconciled += job.finished_at >= start

    revive = "UPDATE slipway_training_jobs SET state = 'Running', finished_at = NULL"
    with committing(sqlite_url, revive) as writer:
        calls, failures = repeat(
            get, seconds=60, until=lambda: reconciled >= 20 and writer.commits >= 20
        )
    assert failures == [], f"after {calls} calls and {writer.commits} commits: {failures[0]}"
    assert reconciled >= 20 and writer.commits >= 20, (reconciled, writer.commits)


def test_jobs_page_with_an_offset_and_count(db: Database) -> None:
    """The console pages the list: ``offset`` skips the newest, ``count`` says how many
    there are in all, each per workspace."""
    training = TrainingService(db, WorkQueue(db), EventLog(db))
    for n in range(5):
        training.submit({"name": f"job-{n}", "function": "math:sqrt"})
    training.in_workspace("fraud").submit({"name": "theirs", "function": "math:sqrt"})
    assert training.count() == 5 and training.in_workspace("fraud").count() == 1
    assert [j.name for j in training.jobs(2)] == ["job-4", "job-3"]
    assert [j.name for j in training.jobs(2, offset=2)] == ["job-2", "job-1"]
    assert [j.name for j in training.jobs(2, offset=4)] == ["job-0"]
    assert training.jobs(2, offset=5) == []
