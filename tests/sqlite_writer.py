"""Another connection that keeps committing to a SQLite file while a test calls a service.

On SQLite (WAL), a deferred transaction that reads and then writes fails at once with
"database is locked" when another connection committed in between: its snapshot is stale
and the busy timeout does not help. Services take :meth:`Database.write` for such blocks;
these tests make the other connection's commits happen, many times a second.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError


@dataclass
class Writer:
    commits: int = 0
    errors: list[BaseException] = field(default_factory=list)

    def next_commit(self, timeout: float = 1.0) -> None:
        """Wait until the writer has committed once more."""
        seen = self.commits
        deadline = time.monotonic() + timeout
        while self.commits == seen and time.monotonic() < deadline:
            time.sleep(0.0001)


@contextmanager
def committing(
    url: str, statement: str, params: tuple[Any, ...] = (), *, pause: float = 0.001
) -> Iterator[Writer]:
    """Run ``statement`` in a loop, each in its own committed transaction, on a plain
    ``sqlite3`` connection of its own, until the block ends.

    Each commit also bumps a counter of its own: an UPDATE that rewrites identical bytes
    leaves the file as it was and makes no snapshot stale. The ``pause`` between commits
    leaves the lock free now and then: SQLite's busy handler polls, so a writer that
    retakes the lock at once would starve the service's waiting writes."""
    path = make_url(url).database
    assert path
    writer = Writer()
    stop = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS test_writer_commits (n INTEGER)")
            conn.execute("INSERT INTO test_writer_commits VALUES (0)")
            while not stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(statement, params)
                conn.execute("UPDATE test_writer_commits SET n = n + 1")
                conn.execute("COMMIT")
                writer.commits += 1
                time.sleep(pause)
        except BaseException as exc:
            writer.errors.append(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=run, name="sqlite-writer", daemon=True)
    thread.start()
    try:
        yield writer
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not writer.errors, writer.errors


def repeat(
    call: Callable[[], Any], seconds: float, *, until: Callable[[], bool] | None = None
) -> tuple[int, list[OperationalError]]:
    """Call ``call`` for ``seconds``, or until ``until()`` holds (``seconds`` is then the
    deadline: a loaded machine gets there later, not wrong); (calls made, the
    OperationalError that stopped it)."""
    calls = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            call()
        except OperationalError as exc:
            return calls, [exc]
        calls += 1
        if until is not None and until():
            break
    return calls, []
