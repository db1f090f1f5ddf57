"""``slipway db``: migrations of the metadata database.

The database layer (SQLAlchemy, Alembic) loads inside the commands: ``slipway --help``
loads none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from slipway.cli.context import reported, settings_or_exit
from slipway.cli.output import console
from slipway.core.settings import mask_url

if TYPE_CHECKING:
    from slipway.core.db import Database

app = typer.Typer(help="Migrate the metadata database.", no_args_is_help=True)


def _open() -> Database:
    from slipway.core.db import Database  # lazy: module docstring

    settings = settings_or_exit()
    return Database(settings.database_url)


@app.command("upgrade")
def upgrade_cmd(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from slipway.core.db import current_revision, upgrade  # lazy: module docstring

    with reported():
        db = _open()
        before = current_revision(db)
        upgrade(db, revision)
        after = current_revision(db)
        console.print(f"{mask_url(str(db.url))}: {before or 'empty'} -> {after}")
        db.dispose()


@app.command("downgrade")
def downgrade_cmd(revision: str = typer.Argument(..., help="target revision, or 'base'")) -> None:
    """Revert migrations down to REVISION ('base' drops every Slipway table)."""
    from slipway.core.db import current_revision, downgrade  # lazy: module docstring

    with reported():
        db = _open()
        downgrade(db, revision)
        console.print(f"now at {current_revision(db) or 'base'}")
        db.dispose()


@app.command("current")
def current_cmd() -> None:
    """Print the database's revision and the newest one this Slipway knows."""
    from slipway.core.db import current_revision, head_revision  # lazy: module docstring

    with reported():
        db = _open()
        console.print(f"current: {current_revision(db) or 'empty'}  head: {head_revision()}")
        db.dispose()
