"""Captured output of user code (steps, jobs, trials), appended to the shared log table."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.db.tables import StepLogRow
from slipway.core.errors import BackendUnavailable

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
