"""``slipway config``: the effective settings."""

from __future__ import annotations

import typer
import yaml

from slipway.cli.context import settings_or_exit
from slipway.cli.output import Format, OutputOption, console, print_json
from slipway.core.settings import config_file_path

app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)


@app.command("show")
def show(output: OutputOption = Format.TABLE) -> None:
    """Print the effective settings (environment > slipway.yaml > defaults), secrets masked."""
    settings = settings_or_exit()
    data = settings.masked()
    if output is Format.JSON:
        print_json(data)
        return
    path = config_file_path()
    source = f"{path} (found)" if path.exists() else f"{path} (not found; defaults apply)"
    console.print(f"[dim]# settings file: {source}[/dim]")
    console.print(yaml.safe_dump(data, sort_keys=False).rstrip())
