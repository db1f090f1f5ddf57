"""``slipway tokens``: API tokens (in process, or with ``--url`` as an admin)."""

from __future__ import annotations

import getpass

import typer

from slipway.cli.context import platform, record_action
from slipway.cli.output import Format, OutputOption, console, emit, print_json
from slipway.security.resources import Role, Token

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="a name for the token, e.g. ci-deployer"),
    role: Role = typer.Option(Role.VIEWER, help="viewer, editor or admin"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Create a token; its secret is printed once and cannot be shown again."""
    with platform() as services:
        token, secret = services.tokens.create(name, role, created_by=f"cli:{getpass.getuser()}")
        record_action(services, "tokens.create", f"token/{token.id}", name=name, role=role.value)
    if output is Format.JSON:
        print_json(token.model_dump(mode="json") | {"token": secret})
        return
    console.print(f"created token [bold]{token.name}[/bold] ({token.role}), id {token.id}")
    console.print("secret (shown only now):")
    typer.echo(secret)


@app.command("list")
def list_tokens(output: OutputOption = Format.TABLE) -> None:
    """List tokens (never their secrets)."""
    with platform() as services:
        tokens = services.tokens.list()
    if output is Format.JSON:
        print_json([t.model_dump(mode="json") for t in tokens])
        return
    columns = Token.table_columns()
    emit([{c: getattr(t, c) for c in columns} for t in tokens], columns, output)


@app.command("revoke")
def revoke(id_or_name: str = typer.Argument(..., help="token id or name")) -> None:
    """Revoke a token; requests using it get 401 from now on."""
    with platform() as services:
        token = services.tokens.revoke(id_or_name)
        record_action(services, "tokens.revoke", f"token/{token.id}")
    console.print(f"revoked {token.name} ({token.id})")
