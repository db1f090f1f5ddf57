"""``slipway workspaces``: the teams' shares of the platform (in process, or with
``--url``: creating one needs an admin of every workspace)."""

from __future__ import annotations

import typer

from slipway.cli.context import cli_actor, platform
from slipway.cli.output import Format, OutputOption, console, emit_resources, print_json
from slipway.security.resources import Workspace

app = typer.Typer(
    help="Create and list workspaces, and set their model format policy.", no_args_is_help=True
)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="a name for the workspace, e.g. fraud-team"),
    description: str = typer.Option("", help="what the workspace is for"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Create an empty workspace; grant it with ``slipway tokens create NAME --in WS``."""
    with platform() as services:
        workspace = services.workspaces.create(name, description, actor=cli_actor())
    if output is Format.JSON:
        print_json(workspace.model_dump(mode="json"))
        return
    console.print(f"created workspace [bold]{workspace.name}[/bold]")


@app.command("list")
def list_workspaces(output: OutputOption = Format.TABLE) -> None:
    """List the workspaces (with --url: those the token holds a role in)."""
    with platform() as services:
        workspaces = services.workspaces.list()
    emit_resources(workspaces, Workspace.table_columns(), output)


@app.command("formats")
def formats(
    name: str = typer.Argument(..., help="the workspace"),
    patterns: list[str] = typer.Argument(
        None, help='flavor/serialization patterns, e.g. "*/native" sklearn/skops'
    ),
    clear: bool = typer.Option(False, "--clear", help="back to the platform's policy alone"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Set the model formats a workspace's models may be registered and loaded in,
    within the platform's registry.allowed_model_formats (a platform admin's change)."""
    if clear == bool(patterns):
        raise typer.BadParameter("give patterns, or --clear (not both)")
    with platform() as services:
        workspace = services.workspaces.set_model_formats(
            name, None if clear else list(patterns), actor=cli_actor()
        )
    if output is Format.JSON:
        print_json(workspace.model_dump(mode="json"))
        return
    policy = ", ".join(workspace.model_formats or []) or "the platform's"
    console.print(f"workspace [bold]{workspace.name}[/bold] loads: {policy}")
