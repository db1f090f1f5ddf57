"""Captured output of user code (steps, jobs, trials), appended to the shared log table
and read back as :class:`LogLine` resources (the same resource for a pipeline step, a
training job and a tuning trial: they share the table)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from sqlalchemy import select

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.db.tables import StepLogRow
from slipway.core.errors import BackendUnavailable
from slipway.core.resource import Listing, Resource

log = logging.getLogger("slipway.logs")


def log_writer(db: Database, key: str, step: str, attempt: int) -> Callable[[str], None]:
    """A sink for :func:`slipway.runtime.childproc.run_child` output: each chunk becomes a
    row under ``key`` (an execution id, ``job/<name>``, ``tuning/<name>``) and ``step``."""

    pending: list[str] = []

    def write(text: str) -> None:
        # While the database is away the output is held and written with the next chunk
        # that gets through: the user code keeps running, and its log keeps its order.
        pending.append(text)
        try:
            with db.session() as session:
                session.add(
                    StepLogRow(
                        execution_id=key,
                        step=step,
                        attempt=attempt,
                        text="".join(pending),
                        time=utcnow(),
                    )
                )
        except BackendUnavailable as exc:
            log.warning("output of %s/%s held back: %s", key, step, exc.message)
            return
        pending.clear()

    return write


class LogLine(Resource):
    """A chunk of captured output: ``id`` orders the chunks and is the position to read
    on from (``after=``); ``step`` is the pipeline step, ``job`` or ``trial-<n>``."""

    table_fields: ClassVar[tuple[str, ...]] = ("id", "step", "attempt", "time", "text")

    id: int
    step: str
    attempt: int
    time: datetime
    text: str


def read_logs(
    db: Database, key: str, *, step: str | None = None, after: int = 0
) -> Listing[LogLine]:
    """The chunks logged under ``key`` (and ``step``) after position ``after``, in order."""
    query = (
        select(StepLogRow)
        .where(StepLogRow.execution_id == key, StepLogRow.id > after)
        .order_by(StepLogRow.id)
    )
    if step:
        query = query.where(StepLogRow.step == step)
    with db.session() as session:
        return Listing(LogLine.model_validate(row) for row in session.scalars(query))
