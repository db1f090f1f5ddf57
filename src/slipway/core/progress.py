"""Progress for long calls made from a notebook or a terminal: a wait on a pipeline or a
job, an upload of a large table.

A person who calls ``wait`` in Jupyter or at a prompt should see that something is
happening (the state, how far along, how long so far); a script, a CI log or a test should
not get a screen of redraws. So progress shows by default only where a person is looking —
an interactive terminal on stderr, or a Jupyter kernel — and ``progress=True/False`` on the
call overrides that.

Rich draws it in both places (it renders to Jupyter's output area when running in a
kernel), the same library the CLI draws its bars with.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)


class Reporter(Protocol):
    """What a long call tells whoever watches it."""

    def update(self, status: str, *, done: float | None = None, total: float | None = None) -> None:
        """The state now (``Running``, ``3/5 steps``...), and how far when known."""


class _Silent:
    def update(self, status: str, *, done: float | None = None, total: float | None = None) -> None:
        return None


def in_notebook() -> bool:
    """True in a Jupyter (IPython kernel) process."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    get = getattr(shell, "get_ipython", None)
    instance = get() if get is not None else None
    return instance is not None and type(instance).__name__ == "ZMQInteractiveShell"


def should_show(progress: bool | None) -> bool:
    """``progress`` when given, else whether a person is watching (a TTY or a notebook)."""
    if progress is not None:
        return progress
    return in_notebook() or sys.stderr.isatty()


class _Bar:
    def __init__(self, bar: Progress, task: TaskID) -> None:
        self.bar = bar
        self.task = task

    def update(self, status: str, *, done: float | None = None, total: float | None = None) -> None:
        self.bar.update(self.task, status=status, completed=done or 0, total=total)


@contextmanager
def reporting(description: str, *, progress: bool | None = None) -> Iterator[Reporter]:
    """A reporter for one long call: a live line (spinner, description, state, bar when
    the total is known, elapsed time) where a person watches, nothing elsewhere."""
    if not should_show(progress):
        yield _Silent()
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=not in_notebook()),
        transient=False,
    )
    with bar:
        yield _Bar(bar, bar.add_task(description, total=None, status="…"))


@contextmanager
def transfer(description: str, total: int, *, progress: bool | None = None) -> Iterator[Reporter]:
    """A reporter for bytes sent or received (an upload of a table): size and speed."""
    if not should_show(progress):
        yield _Silent()
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=not in_notebook()),
    )
    with bar:
        yield _Bar(bar, bar.add_task(description, total=total, status=""))


__all__ = ["Reporter", "in_notebook", "reporting", "should_show", "transfer"]
