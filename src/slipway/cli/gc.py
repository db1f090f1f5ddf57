"""``slipway gc``: delete what the retention settings say is old, keep what is needed.

The garbage collector loads inside the command (it brings every kind's backends):
``slipway --help`` loads only the kinds' names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from slipway.cli.context import local_platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, print_json
from slipway.retention import KINDS

if TYPE_CHECKING:
    from slipway.retention import GarbageCollector
    from slipway.services import Services


def collector(services: Services) -> GarbageCollector:
    """The garbage collector over an opened platform, with its retention settings."""
    from slipway.retention import GarbageCollector  # lazy: module docstring

    settings = services.settings
    return GarbageCollector(
        retention=settings.retention,
        db=services.db,
        artifacts=services.artifacts,
        artifact_root=settings.artifact_root,
        offline=services.features.offline,
        mlflow=services.registry.mlflow,
        kafka=bool(settings.kafka.bootstrap_servers),
    )


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be deleted; delete nothing")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help=f"only this kind (repeatable): {', '.join(KINDS)}"),
    ] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Delete captured traffic, Delta files, work items, events, audit rows (exported
    first) and deleted MLflow runs older than the ``retention`` settings allow; never
    what a registered model, a training set in lineage, a monitor or unfinished work
    needs."""
    with local_platform() as services, reported():
        report = collector(services).run(dry_run=dry_run, only=only)
    if output is Format.JSON:
        print_json(report.to_dict())
        return
    rows = [
        {
            "kind": k.kind,
            "deleted": k.deleted if k.enabled else "kept for ever",
            "bytes_freed": k.bytes_freed,
            "protected": k.protected,
            "notes": "; ".join(k.notes),
        }
        for k in report.kinds
    ]
    title = "gc (dry run: nothing deleted)" if dry_run else "gc"
    emit(rows, ["kind", "deleted", "bytes_freed", "protected", "notes"], output, title=title)
    if dry_run:
        console.print("dry run: nothing was deleted")
