"""``slipway doctor``: is every configured backend reachable?

The checks load inside the command (they bring every backend's client): ``slipway
--help`` loads none of them.
"""

from __future__ import annotations

import typer

from slipway.cli.context import settings_or_exit
from slipway.cli.output import Format, OutputOption, emit


def doctor(output: OutputOption = Format.TABLE) -> None:
    """Check the database, artifact root, online store, Kafka and Ray; exit 1 if any
    configured backend is unreachable."""
    from slipway.core.health import check_all  # lazy: module docstring

    checks = check_all(settings_or_exit())
    rows = [c.to_dict() for c in checks]
    if output is Format.TABLE:
        colour = {"ok": "green", "unreachable": "red", "not configured": "dim"}
        for row in rows:
            row["status"] = f"[{colour[row['status']]}]{row['status']}[/]"
    emit(rows, ["backend", "target", "status", "detail", "latency_ms"], output, title="doctor")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
