"""``slipway audit``: who changed what."""

from __future__ import annotations

import typer

from slipway.cli.context import platform
from slipway.cli.output import Format, OutputOption, emit
from slipway.security.resources import AuditEntry


def audit(
    limit: int = typer.Option(50, min=1, max=1000, help="how many entries, newest first"),
    actor: str | None = typer.Option(None, help="only this actor, e.g. cli:alice"),
    action: str | None = typer.Option(
        None, help="only actions containing this, e.g. feature_group. or POST"
    ),
    output: OutputOption = Format.TABLE,
) -> None:
    """Show the audit log of mutations, newest first."""
    with platform() as services:
        entries = services.audit.list(limit=limit, actor=actor, action=action)
    emit([e.model_dump() for e in entries], AuditEntry.table_columns(), output, title="audit log")
