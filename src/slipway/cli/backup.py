"""``slipway backup PATH`` and ``slipway restore PATH``: one archive of the whole platform.

Thin: parse, call :mod:`slipway.backup.service`, draw its progress with Rich, print what
was written. The work itself, and why it is consistent, is documented there. It loads
inside the commands (it brings the database engine and Delta): ``slipway --help`` loads
none of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from slipway.cli.context import cli_actor, local_platform, reported, settings_or_exit
from slipway.cli.output import Format, OutputOption, console, errors, print_json

PgBinOption = Annotated[
    Path | None,
    typer.Option(
        "--pg-bin",
        help="folder of pg_dump / pg_restore (default: the newest /usr/lib/postgresql/*/bin,"
        " else PATH)",
    ),
]


class _Bar:
    """Draws :class:`slipway.backup.service.Progress` as one Rich bar per phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def phase(self, description: str, total: int | None = None) -> None:
        if self.task is not None:
            previous = self.progress.tasks[-1]
            self.progress.update(self.task, completed=previous.total or previous.completed)
        self.task = self.progress.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)


def _bars() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=False,
    )


def backup(
    path: Annotated[Path, typer.Argument(help="the archive: *.tar, *.tar.gz or *.tar.zst")],
    pg_bin: PgBinOption = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Write one consistent archive of the platform (database, offline store, artifacts,
    online store, settings without secrets) while it runs."""
    from slipway.backup.service import create_backup  # lazy: module docstring

    settings = settings_or_exit()
    with reported(), _bars() as bars:
        manifest = create_backup(settings, path, progress=_Bar(bars), pg_bin=pg_bin)
    size = sum(entry.size for entry in manifest.files.values())
    if output is Format.JSON:
        print_json({"path": str(path), "files": len(manifest.files), "bytes": size})
        return
    groups = ", ".join(f"{g}@{v}" for g, v in manifest.delta_versions.items()) or "none"
    console.print(
        f"wrote {path}: {len(manifest.files)} files, {size} bytes before compression,"
        f" {manifest.engine} database, feature groups {groups}"
    )


def restore(
    path: Annotated[Path, typer.Argument(help="an archive written by `slipway backup`")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="replace the target's database, artifact root and online file"
        ),
    ] = False,
    pg_bin: PgBinOption = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Restore an archive into the configured (empty) home, database and artifact root;
    the archive is verified before anything is written."""
    from slipway.backup.service import restore_backup  # lazy: module docstring

    settings = settings_or_exit()
    with reported(), _bars() as bars:
        bar = _Bar(bars)
        report = restore_backup(settings, path, force=force, progress=bar, pg_bin=pg_bin)
        bar.phase("materializing online features")
        with local_platform(settings) as services:
            materialized = services.features.materialize_all(actor=cli_actor())
    if output is Format.JSON:
        print_json(
            {
                "path": str(path),
                "files": len(report.manifest.files),
                "rewritten": report.rewritten,
                "materialized": materialized,
            }
        )
        return
    console.print(
        f"restored {path} into {settings.home}: {len(report.manifest.files)} files,"
        f" {sum(report.rewritten.values())} stored locations rewritten,"
        f" {len(materialized)} feature groups materialized online"
    )
