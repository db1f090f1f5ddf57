"""Captured output of user code (steps, jobs, trials), appended to the shared log table."""

from __future__ import annotations

from collections.abc import Callable

from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.db.tables import StepLogRow


def log_writer(db: Database, key: str, step: str, attempt: int) -> Callable[[str], None]:
    """A sink for :func:`slipway.runtime.childproc.run_child` output: each chunk becomes a
    row under ``key`` (an execution id, ``job/<name>``, ``tuning/<name>``) and ``step``."""

    def write(text: str) -> None:
        with db.session() as session:
            session.add(
                StepLogRow(execution_id=key, step=step, attempt=attempt, text=text, time=utcnow())
            )

    return write
